"""End to end on real photos from installed packages, with the real default tagger and embedder.

The foundation's promise: point capdex at a folder and plain-language search works; re-runs,
copies and moves cost no captioning; deleted photos leave the results; counts stay consistent.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from capdex.api.cli import app
from capdex.samples import write_samples
from capdex.settings import Settings
from capdex.captioners import registry
from capdex.captioners.tagger import TaggerCaptioner

pytestmark = pytest.mark.slow
runner = CliRunner()


class CountingTagger(TaggerCaptioner):
    """The real tagger, counting how many images it was asked to caption."""

    name = "tagger"
    images_captioned = 0

    def caption_and_looks(self, images: Sequence) -> tuple[list[str], Any]:
        """The one forward pass both captioning and the photo's looks go through."""
        type(self).images_captioned += len(images)
        return super().caption_and_looks(images)


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    folder = tmp_path / "photos"
    write_samples(folder)
    return folder


@pytest.fixture
def capdex(data_dir: Path):
    registry.register(CountingTagger)
    CountingTagger.images_captioned = 0

    def run(*args: str) -> dict:
        result = runner.invoke(app, [*args, "--data-dir", str(data_dir), "--json"])
        assert result.exit_code == 0, result.stderr
        return json.loads(result.stdout)

    return run


def search_names(capdex, query: str, k: int = 3) -> list[str]:
    return [Path(r["path"]).name for r in capdex("search", query, "-k", str(k))["results"]]


def assert_consistent(capdex, photos: int, files: int) -> None:
    status = capdex("status")
    assert (status["photos"], status["files"], status["vectors"]) == (photos, files, photos)
    assert status["captioner"] == "tagger"


def test_index_search_and_incremental_runs(capdex, photos: Path) -> None:
    n = len(list(photos.iterdir()))
    summary = capdex("index", str(photos))
    assert summary["new"] == n and summary["failed"] == 0
    assert CountingTagger.images_captioned == n
    assert_consistent(capdex, n, n)

    assert search_names(capdex, "a cat")[0] == "chelsea-the-cat.png"
    assert search_names(capdex, "a cup of coffee")[0] == "coffee-cup.png"
    assert search_names(capdex, "motorbike")[0] == "red-motorcycle.png"
    # The text a photo shows is searchable (OCR, on by default).
    assert search_names(capdex, "markers of the coins")[0] == "page-of-text.png"

    # A second run does no captioning.
    CountingTagger.images_captioned = 0
    assert capdex("index", str(photos))["unchanged"] == n
    assert CountingTagger.images_captioned == 0

    # A copy adds a file, but no photo and no captioning.
    shutil.copy(photos / "chelsea-the-cat.png", photos / "chelsea-copy.png")
    assert capdex("index", str(photos))["copied"] == 1
    assert CountingTagger.images_captioned == 0
    assert_consistent(capdex, n, n + 1)

    # A moved file is not captioned again, and search shows its new path.
    (photos / "moved").mkdir()
    shutil.move(photos / "coffee-cup.png", photos / "moved" / "espresso.png")
    assert capdex("index", str(photos))["moved"] == 1
    assert CountingTagger.images_captioned == 0
    assert search_names(capdex, "a cup of coffee")[0] == "espresso.png"

    # A deleted file disappears from the results.
    (photos / "red-motorcycle.png").unlink()
    assert capdex("index", str(photos))["removed"] == 1
    assert "red-motorcycle.png" not in search_names(capdex, "motorbike", k=20)
    assert_consistent(capdex, n - 1, n)
    assert CountingTagger.images_captioned == 0


def test_caption_command_on_the_cat(photos: Path, data_dir: Path) -> None:
    result = runner.invoke(app, ["caption", str(photos / "chelsea-the-cat.png"),
                                 "--data-dir", str(data_dir)])
    assert result.exit_code == 0 and "cat" in result.stdout


def test_default_settings_choose_the_tagger() -> None:
    assert Settings().captioner == "tagger"
