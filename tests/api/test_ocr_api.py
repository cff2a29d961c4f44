"""Text in photos over HTTP and the CLI: the photo view's OCR text, `has_text`, result snippets."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from capdex.api.app import create_app
from capdex.api.cli import app as cli
from capdex.settings import Settings
from capdex.indexer.pipeline import Indexer
from capdex.store.db import Database
from tests.api.serving import serving
from tests.indexer.test_ocr import CountingOcr, photos  # noqa: F401 - the page + cat fixture

SIGN = "Grand opening sale at the bakery\nFresh bread every morning"


@pytest.fixture
def indexed(settings: Settings, photos: Path, embedder, colour_captioner) -> Settings:  # noqa: F811
    Indexer(settings, Database(settings.db_url), embedder=embedder,
            ocr_engine=CountingOcr("1", SIGN)).run([photos])
    return settings


def test_photo_view_search_snippet_and_has_text(indexed: Settings) -> None:
    with serving(create_app(indexed)) as url:
        found = httpx.get(f"{url}/api/search",
                          params={"q": "fresh bread", "k": 5, "min_score": -1}).json()
        page = found["results"][0]
        assert page["path"].endswith("page.png")
        assert page["ocr_snippet"] == "Fresh bread every morning"  # the line that matched
        assert found["results"][1]["ocr_snippet"] is None  # the cat shows no text
        assert page["match"]["keyword"]["fields"] == ["ocr"]  # keyword search reads the text
        only = httpx.get(f"{url}/api/search",
                         params={"q": "bread", "has_text": "true", "min_score": -1}).json()
        assert [r["path"][-8:] for r in only["results"]] == ["page.png"] and only["total"] == 1
        none = httpx.get(f"{url}/api/search",
                         params={"q": "bread", "has_text": "false", "min_score": -1}).json()
        assert [r["path"][-7:] for r in none["results"]] == ["cat.png"]
        bad = httpx.get(f"{url}/api/search", params={"q": "bread", "has_text": "maybe"})
        assert bad.status_code == 422
        photo = httpx.get(f"{url}/api/photos/{page['id']}").json()
        assert photo["ocr_text"] == SIGN and photo["ocr_confidence"] == 0.9
        assert photo["ocr_engine"] == "rapidocr 1"
        cat = httpx.get(f"{url}/api/photos/{found['results'][1]['id']}").json()
        assert cat["ocr_text"] == "" and cat["ocr_engine"] == "rapidocr 1"


def test_cli_search_has_text_and_shows_the_text(indexed: Settings) -> None:
    runner = CliRunner()
    args = ["search", "bread", "--min-score", "-1", "--data-dir", str(indexed.data_dir)]
    shown = runner.invoke(cli, args + ["--has-text"])
    assert shown.exit_code == 0, shown.output
    assert "page.png" in shown.output and "cat.png" not in shown.output
    assert "text: Fresh bread every morning" in shown.output
    hidden = runner.invoke(cli, args + ["--no-text"])
    assert "cat.png" in hidden.output and "page.png" not in hidden.output
