"""What a new user meets first: searching where nothing is indexed says so, creates nothing, and
points at the data dir that `make run` filled."""

from __future__ import annotations

import json
import shutil
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
    code, _, err = capdex("index", str(colour_folder), "--data-dir", str(data_dir),
                          "--captioner", "test-colour")
    assert code == 0, err
    return data_dir


@pytest.mark.parametrize("command", [["search", "a cat"], ["search", "a cat", "--json"],
                                     ["similar", "1"], ["errors"], ["caption-set", "1", "x"]])
def test_reading_a_missing_index_says_so_and_creates_nothing(tmp_path: Path,
                                                             command: list[str]) -> None:
    missing = tmp_path / "nowhere"
    code, out, err = capdex(*command, "--data-dir", str(missing))
    assert code == 1, (out, err)
    assert f"no index in {missing} yet" in err and "capdex index" in err
    assert not missing.exists()  # no empty database left behind


def test_the_default_data_dir_is_named_too(tmp_path: Path) -> None:
    code, _, err = capdex("search", "a cat")  # XDG_DATA_HOME points into tmp_path (conftest)
    assert code == 1 and str(tmp_path / "xdg" / "capdex") in err
    assert not (tmp_path / "xdg").exists()


def test_status_of_a_missing_index(tmp_path: Path) -> None:
    code, out, err = capdex("status", "--data-dir", str(tmp_path / "nowhere"))
    assert code == 1 and "no index in" in err and not out
    code, out, _ = capdex("status", "--json", "--data-dir", str(tmp_path / "nowhere"))
    data = json.loads(out)
    assert code == 1 and data["photos"] == 0 and "capdex index" in data["note"]
    assert not (tmp_path / "nowhere").exists()


def test_an_index_without_photos_says_so(tmp_path: Path, colour_captioner) -> None:
    (tmp_path / "empty").mkdir()
    code, _, _ = capdex("index", str(tmp_path / "empty"), "--data-dir", str(tmp_path / "d"),
                        "--captioner", "test-colour")
    assert code == 0
    code, _, err = capdex("search", "a cat", "--data-dir", str(tmp_path / "d"))
    assert code == 1 and "holds no photos yet" in err and "capdex index" in err
    code, out, _ = capdex("status", "--json", "--data-dir", str(tmp_path / "d"))
    assert code == 0 and json.loads(out)["photos"] == 0  # it exists: status reports it


def test_no_match_says_how_many_photos_were_searched(indexed: Path) -> None:
    code, out, _ = capdex("search", "zebra crossing", "--data-dir", str(indexed))
    assert code == 0
    assert out.startswith('No photos match "zebra crossing" among the 6 photos indexed in '
                          f"{indexed}")
    assert "--min-score 0" in out


def test_the_hint_points_at_make_runs_data_dir(tmp_path: Path, indexed: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    project = tmp_path / "project"
    shutil.copytree(indexed, project / ".capdex-data")
    monkeypatch.chdir(project)
    code, _, err = capdex("search", "red", "--data-dir", str(tmp_path / "other"))
    assert code == 1
    assert f"export CAPDEX_DATA_DIR={project / '.capdex-data'}" in err
    code, out, _ = capdex("search", "red", "--data-dir", str(project / ".capdex-data"))
    assert code == 0 and "red.jpg" in out


def test_status_says_which_models_wrote_the_captions(indexed: Path, tmp_path: Path) -> None:
    from capdex.captioners import registry
    from tests.api.fakes import WordsCaptioner
    from tests.conftest import write_colour_photo

    registry.register(WordsCaptioner)
    write_colour_photo(tmp_path / "more" / "green.jpg", "green", seed=7)
    code, _, err = capdex("index", str(tmp_path / "more"), "--data-dir", str(indexed),
                          "--captioner", "test-words")
    assert code == 0, err
    code, _, _ = capdex("caption-set", "1", "my own words", "--data-dir", str(indexed))
    assert code == 0
    code, out, _ = capdex("status", "--json", "--data-dir", str(indexed))
    data = json.loads(out)
    # the default stays what the settings say; what wrote the captions is counted apart
    assert data["captioner"] == "tagger"
    assert data["captioned_by"] == {"test-colour": 6, "test-words": 1, "human": 1}
    code, out, _ = capdex("status", "--data-dir", str(indexed))
    assert "captioned by: test-colour 6, test-words 1, human 1" in out
    assert "captioner: tagger (the default for photos indexed next)" in out


def test_caption_prints_the_text_ocr_read_too(tmp_path: Path, colour_captioner) -> None:
    """`capdex caption page.png`: the caption first, then the text, labelled (real RapidOCR)."""
    from capdex.samples import SAMPLES, write_samples

    page = next(p for p in write_samples(tmp_path / "photos", [s for s in SAMPLES
                                                               if s.filename == "page-of-text.png"]))
    data = ["--captioner", "test-colour", "--data-dir", str(tmp_path / "d")]
    code, out, err = capdex("caption", str(page), *data)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == "a plain white picture"
    assert lines[1].startswith("Text in the photo (OCR, ") and lines[1].endswith("% confident):")
    assert lines[2] == "  Region-based segmentation"
    code, out, _ = capdex("caption", str(page), *data, "--json")
    reply = json.loads(out)
    assert reply["caption"] == "a plain white picture" and "markers of the coins" in reply["text"]
    assert 0 < reply["text_confidence"] <= 1
    code, out, _ = capdex("caption", str(page), *data, "--no-ocr")
    assert out == "a plain white picture\n"
    assert not (tmp_path / "d").exists()  # nothing stored


def test_caption_says_when_a_photo_shows_no_text(colour_folder: Path, tmp_path: Path, colour_captioner) -> None:
    code, out, _ = capdex("caption", str(colour_folder / "red.jpg"), "--captioner", "test-colour",
                          "--data-dir", str(tmp_path / "d"))
    assert code == 0 and out == "a plain red picture\nText in the photo (OCR): none found\n"
