"""`capdex caption` and `capdex index` with a chosen model from a local folder, through the CLI.

The captioners are tested one by one elsewhere; this checks the wiring people use: `--captioner`
and `--model-path` reach the model, provenance is stored, and switching models re-captions only
with `--recaption`.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from capdex.api.cli import app
from tests.conftest import write_colour_photo

runner = CliRunner()


def capdex(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.stderr
    return result.stdout


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    for i, colour in enumerate(["red", "green", "blue"]):
        write_colour_photo(tmp_path / "photos" / f"{colour}.jpg", colour, size=(96, 72), seed=i)
    return tmp_path / "photos"


def test_caption_with_a_local_blip_folder(photos: Path, blip_dir: Path, tmp_path: Path) -> None:
    out = capdex("caption", str(photos / "red.jpg"), "--captioner", "blip-base",
                 "--model-path", str(blip_dir), "--data-dir", str(tmp_path / "d"))
    assert out.strip()  # random weights: any text, but a caption came back


@pytest.mark.parametrize(
    ("name", "fixture"), [("vit-gpt2", "vit_gpt2_dir"), ("hf-vlm", "llava_dir")]
)
def test_caption_with_the_newer_models(
    photos: Path,
    tmp_path: Path,
    name: str,
    fixture: str,
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CAPDEX_LLM_MAX_TOKENS", "8")  # the tiny model never stops on its own
    folder = request.getfixturevalue(fixture)
    out = capdex("caption", str(photos / "blue.jpg"), "--captioner", name,
                 "--model-path", str(folder), "--data-dir", str(tmp_path / "d"))
    assert out.strip()


def test_index_with_im2txt_records_provenance_and_recaption_switches(
    photos: Path, im2txt_dir: Path, blip_dir: Path, tmp_path: Path
) -> None:
    data = str(tmp_path / "d")
    summary = json.loads(capdex("index", str(photos), "--captioner", "im2txt",
                                "--model-path", str(im2txt_dir), "--data-dir", data, "--json"))
    assert summary["new"] == 3 and summary["failed"] == 0
    hit = json.loads(capdex("search", "anything", "--min-score", "-1", "--json", "--data-dir", data))["results"][0]
    assert hit["captioner"] == "im2txt"

    # Another model without --recaption: nothing is redone.
    summary = json.loads(capdex("index", str(photos), "--captioner", "blip-base",
                                "--model-path", str(blip_dir), "--data-dir", data, "--json"))
    assert summary["recaptioned"] == 0 and summary["unchanged"] == 3
    # With --recaption: every machine caption now comes from BLIP.
    summary = json.loads(capdex("index", str(photos), "--captioner", "blip-base",
                                "--model-path", str(blip_dir), "--recaption", "--data-dir", data,
                                "--json"))
    assert summary["recaptioned"] == 3
    results = json.loads(capdex("search", "anything", "-k", "5", "--min-score", "-1", "--json", "--data-dir", data))
    assert {r["captioner"] for r in results["results"]} == {"blip-base"}
    status = json.loads(capdex("status", "--json", "--data-dir", data))
    assert status["photos"] == status["vectors"] == 3


def test_a_missing_model_is_an_actionable_error(photos: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["index", str(photos), "--captioner", "blip-base",
                                 "--data-dir", str(tmp_path / "d")])
    assert result.exit_code != 0
    assert "capdex models download blip-base" in result.stderr
    assert "Traceback" not in result.stderr
