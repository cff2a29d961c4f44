"""The `capdex` command through its runner: contracts of index, search, status and errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from capdex.api.cli import app

runner = CliRunner()


def capdex(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def indexed(colour_folder: Path, data_dir: Path, colour_captioner) -> Path:
    code, out, err = capdex("index", str(colour_folder), "--data-dir", str(data_dir),
                            "--captioner", "test-colour")
    assert code == 0, err
    assert "6 new" in out
    return data_dir


def test_help_everywhere() -> None:
    for command in ([], ["index"], ["search"], ["serve"], ["status"], ["caption"], ["errors"],
                    ["similar"], ["eval"]):
        code, out, _ = capdex(*command, "--help")
        assert code == 0 and "Usage" in out


def test_search_json_contract(indexed: Path) -> None:
    code, out, _ = capdex("search", "a red picture", "-k", "3", "--json", "--data-dir", str(indexed))
    assert code == 0
    data = json.loads(out)
    assert set(data) >= {"query", "total", "results"} and data["query"] == "a red picture"
    assert isinstance(data["total"], int) and len(data["results"]) == 3
    first = data["results"][0]
    assert {"id", "path", "caption", "score"} <= set(first)
    assert Path(first["path"]).name == "red.jpg" and isinstance(first["score"], float)


def test_status_json_contract(indexed: Path) -> None:
    code, out, _ = capdex("status", "--json", "--data-dir", str(indexed))
    data = json.loads(out)
    assert code == 0
    assert data["photos"] == data["files"] == data["vectors"] == 6 and data["errors"] == 0
    assert data["embedder"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert isinstance(data["captioner"], str)


def test_index_exits_zero_when_files_fail_and_lists_them(colour_folder: Path, data_dir: Path, colour_captioner) -> None:
    (colour_folder / "zero.jpg").write_bytes(b"")
    code, out, _ = capdex("index", str(colour_folder), "--data-dir", str(data_dir),
                          "--captioner", "test-colour", "--json")
    assert code == 0 and json.loads(out)["failed"] == 1
    code, out, _ = capdex("errors", "--json", "--data-dir", str(data_dir))
    [error] = json.loads(out)["errors"]
    assert error["path"].endswith("zero.jpg") and error["reason"]
    _, out, _ = capdex("status", "--json", "--data-dir", str(data_dir))
    assert json.loads(out)["errors"] == 1


def test_index_of_a_missing_folder_fails_clearly(tmp_path: Path, colour_captioner) -> None:
    code, _, err = capdex("index", str(tmp_path / "nope"), "--data-dir", str(tmp_path / "d"),
                          "--captioner", "test-colour")
    assert code != 0 and "no such file or folder" in err


def test_unknown_captioner_fails_clearly(colour_folder: Path, tmp_path: Path) -> None:
    code, _, err = capdex("index", str(colour_folder), "--data-dir", str(tmp_path / "d"),
                          "--captioner", "no-such-model")
    assert code != 0 and "unknown captioner 'no-such-model'" in err


def test_empty_query_is_refused(indexed: Path) -> None:
    code, _, err = capdex("search", "   ", "--data-dir", str(indexed))
    assert code != 0 and "empty" in err


def test_caption_prints_a_caption_and_stores_nothing(colour_folder: Path, data_dir: Path, colour_captioner) -> None:
    code, out, _ = capdex("caption", str(colour_folder / "red.jpg"), "--captioner", "test-colour",
                          "--no-ocr", "--data-dir", str(data_dir))
    assert code == 0 and out.strip() == "a plain red picture"
    _, out, _ = capdex("status", "--json", "--data-dir", str(data_dir))
    assert json.loads(out)["photos"] == 0


def test_caption_of_a_broken_file_is_a_clear_error(tmp_path: Path, colour_captioner) -> None:
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    code, _, err = capdex("caption", str(bad), "--captioner", "test-colour",
                          "--data-dir", str(tmp_path / "d"))
    assert code != 0 and "bad.png" in err


def test_caption_set_and_clear(indexed: Path) -> None:
    _, out, _ = capdex("search", "red", "-k", "1", "--json", "--data-dir", str(indexed))
    photo_id = json.loads(out)["results"][0]["id"]
    code, out, _ = capdex("caption-set", str(photo_id), "Dad's red tractor", "--json",
                          "--data-dir", str(indexed))
    assert code == 0 and json.loads(out)["caption"] == "Dad's red tractor"
    _, out, _ = capdex("search", "tractor", "-k", "1", "--json", "--data-dir", str(indexed))
    assert json.loads(out)["results"][0]["caption"] == "Dad's red tractor"
    code, out, _ = capdex("caption-set", str(photo_id), "--clear", "--data-dir", str(indexed))
    assert code == 0 and "a plain red picture (machine)" in out


@pytest.mark.parametrize("args, message", [
    (["999999", "text"], "no photo with id 999999"),
    (["1", "  "], "the caption is empty"),
    (["1"], "give either a caption or --clear"),
])
def test_caption_set_refuses_clearly(indexed: Path, args: list[str], message: str) -> None:
    code, _, err = capdex("caption-set", *args, "--data-dir", str(indexed))
    assert code != 0 and message in err


def test_ctrl_c_commits_the_batch_in_hand_and_the_next_run_finishes(colour_folder: Path, data_dir: Path, colour_captioner, monkeypatch) -> None:
    import os
    import signal

    from tests.conftest import ColourCaptioner

    original = ColourCaptioner.caption_batch

    def interrupted(self, images):
        if not ColourCaptioner.calls:
            os.kill(os.getpid(), signal.SIGINT)  # as if the user pressed Ctrl-C
        return original(self, images)

    monkeypatch.setattr(ColourCaptioner, "caption_batch", interrupted)
    monkeypatch.setenv("CAPDEX_STOP_GRACE_SECONDS", "0")  # in-process: never os._exit pytest
    code, out, err = capdex("index", str(colour_folder), "--data-dir", str(data_dir),
                            "--captioner", "test-colour", "--json")
    assert code == 130 and "run the same command again" in err
    summary = json.loads(out)
    assert summary["interrupted"] and summary["new"] == 4  # the first batch (of 4) was kept
    code, out, _ = capdex("index", str(colour_folder), "--data-dir", str(data_dir),
                          "--captioner", "test-colour", "--json")
    assert code == 0 and json.loads(out)["new"] == 2 and json.loads(out)["unchanged"] == 4


@pytest.mark.slow
def test_index_watch_runs_until_ctrl_c_then_stops_cleanly(tmp_path: Path) -> None:
    import queue
    import signal
    import subprocess
    import threading

    from tests.conftest import write_colour_photo
    from tests.consistency import assert_consistent
    from tests.plugins import capdex_command, subprocess_env

    root, data = tmp_path / "photos", tmp_path / "data"
    write_colour_photo(root / "red.jpg", "red")
    env = subprocess_env(tmp_path / "site", CAPDEX_WATCH_DEBOUNCE_SECONDS="0.3",
                         CAPDEX_TEST_CAPTION_DELAY="0", XDG_DATA_HOME=str(tmp_path / "xdg"))
    proc = subprocess.Popen(capdex_command("index", str(root), "--watch", "--data-dir", str(data),
                                           "--captioner", "test-slow"),
                            env=env, cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout], daemon=True).start()
    try:
        assert "1 new" in lines.get(timeout=60)  # the first full pass
        write_colour_photo(root / "new" / "blue.jpg", "blue", seed=1)
        assert "1 new" in lines.get(timeout=60)  # the change, as its own batch
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 0 and "stopped" in err and "Traceback" not in err
    assert_consistent(data, root, "sentence-transformers/all-MiniLM-L6-v2")


def test_search_takes_the_api_options(indexed: Path, colour_folder: Path) -> None:
    code, out, err = capdex("search", "picture", "--mode", "semantic", "--min-score", "-1",
                            "--folder", str(colour_folder / "nested"), "--sort", "date",
                            "--json", "--data-dir", str(indexed))
    assert code == 0, err
    data = json.loads(out)
    assert data["total"] == 3 and data["mode"] == "semantic"
    code, out, _ = capdex("search", "green", "--mode", "keyword", "--data-dir", str(indexed))
    assert code == 0 and "green.jpg" in out and "[green]" in out and "1-1 of 1" in out


@pytest.mark.parametrize(("args", "reason"), [
    (["--camera", "c" * 60_000], "camera: longer than 200"),
    (["--folder", "/" + "f" * 60_000], "folder: longer than 4096"),
    (["--taken-after", "t" * 60_000], "taken_after: longer than 40"),
    (["--mode", "m" * 60_000], "mode: "),
])
def test_overlong_search_options_exit_2_with_a_reason(indexed: Path, args: list[str], reason: str) -> None:
    """Issue 20, point 6: a 60,000-character --camera ended in a traceback."""
    code, _, err = capdex("search", "red", *args, "--data-dir", str(indexed))
    assert code == 2 and reason in err and "Traceback" not in err and len(err) < 1000


def test_the_last_day_there_is_is_a_valid_date(indexed: Path) -> None:
    """Issue 20, point 6: --taken-before 9999-12-31 ended in an OverflowError traceback."""
    code, out, err = capdex("search", "red", "--taken-before", "9999-12-31", "--json",
                            "--data-dir", str(indexed))
    assert code == 0, err
    assert json.loads(out)["total"] >= 0
    code, out, err = capdex("search", "red", "--taken-after", "9999-12-31", "--json",
                            "--data-dir", str(indexed))
    assert code == 0 and json.loads(out)["total"] == 0, err


@pytest.mark.parametrize(("args", "reason"), [
    (["--mode", "fuzzy"], "mode: 'fuzzy' is not one of"),
    (["--sort", "size"], "sort: 'size' is not one of"),
    (["--taken-after", "2024-31-01"], "taken_after"),
    (["--taken-after", "2024-02-01", "--taken-before", "2024-01-01"], "later than"),
])
def test_bad_search_options_fail_with_a_reason(indexed: Path, args: list[str], reason: str) -> None:
    code, _, err = capdex("search", "red", *args, "--data-dir", str(indexed))
    assert code == 2 and reason in err


def test_similar(indexed: Path) -> None:
    _, out, _ = capdex("search", "red", "-k", "1", "--json", "--data-dir", str(indexed))
    photo_id = json.loads(out)["results"][0]["id"]
    code, out, _ = capdex("similar", str(photo_id), "-k", "2", "--json", "--data-dir", str(indexed))
    data = json.loads(out)
    assert code == 0 and data["id"] == photo_id and len(data["results"]) == 2
    assert photo_id not in [r["id"] for r in data["results"]]
    code, out, _ = capdex("similar", str(photo_id), "--data-dir", str(indexed))
    assert code == 0 and "a plain red picture" in out
    code, _, err = capdex("similar", "424242", "--data-dir", str(indexed))
    assert code == 2 and "no photo with id 424242" in err


def test_eval_reports_each_mode(indexed: Path, tmp_path: Path) -> None:
    queries = tmp_path / "q.json"
    queries.write_text(json.dumps([{"q": "red", "rel": ["red.jpg"]},
                                   {"q": "something green", "rel": ["green.jpg"]},
                                   {"q": "zebra", "rel": []}]))
    code, out, err = capdex("eval", str(queries), "--json", "--data-dir", str(indexed))
    assert code == 0, err
    modes = json.loads(out)["modes"]
    assert set(modes) == {"hybrid", "semantic", "keyword"}
    assert modes["hybrid"]["recall_at_1"] == 1.0 and modes["hybrid"]["queries"] == 2
    assert set(modes["hybrid"]) >= {"recall_at_5", "recall_at_10", "mrr", "ndcg_at_10"}
    code, out, _ = capdex("eval", str(queries), "--data-dir", str(indexed))
    assert code == 0 and "nDCG@10" in out and out.count("\n") >= 4
    queries.write_text("[]")
    code, _, err = capdex("eval", str(queries), "--data-dir", str(indexed))
    assert code == 2 and "non-empty JSON list" in err


HEAVY = ("torch", "transformers", "sentence_transformers", "faiss", "onnxruntime", "cv2",
         "rapidocr_onnxruntime")


def test_an_unchanged_re_index_imports_no_model_and_no_vector_index(indexed: Path, colour_folder: Path, tmp_path: Path) -> None:
    """A whole `capdex index` process with nothing to do: no captioner, embedder, OCR engine or
    FAISS is imported (each costs from 0.1 s to seconds of start-up)."""
    import subprocess
    import sys

    from tests.plugins import subprocess_env

    report = ("import sys, json, runpy\n"
              "sys.argv = ['capdex', *sys.argv[1:]]\n"
              "try:\n    runpy.run_module('capdex.api.cli', run_name='__main__')\n"
              "except SystemExit as exc:\n    assert not exc.code, exc.code\n"
              f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]), file=sys.stderr)\n")
    done = subprocess.run([sys.executable, "-c", report, "index", str(colour_folder),
                           "--data-dir", str(indexed), "--json"],
                          env=subprocess_env(tmp_path / "site"), cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["unchanged"] == 6 and summary["new"] == summary["reembedded"] == 0
    assert json.loads(done.stderr.strip().splitlines()[-1]) == []


def test_a_search_process_imports_no_torch(indexed: Path, tmp_path: Path) -> None:
    """`capdex search` in a fresh process answers through ONNX Runtime: torch, transformers and
    sentence-transformers (~6 s and 1 GB of start-up) stay unimported."""
    import subprocess
    import sys

    from tests.plugins import subprocess_env

    torch_stack = ("torch", "transformers", "sentence_transformers", "timm")
    report = ("import sys, json, runpy\n"
              "sys.argv = ['capdex', *sys.argv[1:]]\n"
              "try:\n    runpy.run_module('capdex.api.cli', run_name='__main__')\n"
              "except SystemExit as exc:\n    assert not exc.code, exc.code\n"
              f"print(json.dumps([m for m in {torch_stack!r} if m in sys.modules]), "
              "file=sys.stderr)\n")
    done = subprocess.run([sys.executable, "-c", report, "search", "a plain red picture",
                           "--data-dir", str(indexed), "--json"],
                          env=subprocess_env(tmp_path / "site"), cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    hits = json.loads(done.stdout)["results"]
    assert hits and hits[0]["caption"] == "a plain red picture"
    assert json.loads(done.stderr.strip().splitlines()[-1]) == []


@pytest.mark.parametrize("args", [
    ["similar", str(2**64)], ["caption-set", str(2**64), "text"], ["ask", "q" * 60_000],
    ["ask", "what?", "--photo", str(2**64)],
])
def test_out_of_range_ids_and_overlong_questions_exit_2(indexed: Path, args: list[str]) -> None:
    code, _, err = capdex(*args, "--data-dir", str(indexed))
    assert code == 2 and "Traceback" not in err and len(err) < 2000, err
