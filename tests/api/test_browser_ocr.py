"""The web page shows the text a photo shows (real OCR on skimage's page) and filters by it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from capdex.api.app import create_app
from capdex.settings import Settings
from capdex.indexer.pipeline import Indexer
from capdex.store.db import Database
from tests.api.browser import chromium, page_of
from tests.api.serving import serving
from tests.api.test_browser import TIMEOUT, expect, search
from tests.indexer.test_ocr import PHRASE, photos  # noqa: F401 - the page + cat fixture

pytestmark = [pytest.mark.slow, pytest.mark.browser]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as instance:
        yield instance


def test_the_page_shows_the_text_and_filters_by_it(browser: Any, settings: Settings,
                                                   photos: Path, embedder, colour_captioner) -> None:  # noqa: F811
    Indexer(settings, Database(settings.db_url), embedder=embedder).run([photos])
    searches: list[str] = []
    with serving(create_app(settings)) as url, page_of(browser, url) as page:
        page.on("request", lambda r: searches.append(r.url) if "/api/search?" in r.url else None)
        first = search(page, PHRASE)
        expect(first.locator(".card-ocr")).to_contain_text(PHRASE)
        first.click()
        expect(page.locator("#viewer-ocr")).to_be_visible(timeout=TIMEOUT)
        expect(page.locator("#viewer-ocr-text")).to_contain_text(PHRASE)
        expect(page.locator("#viewer-ocr-source")).to_contain_text("rapidocr")
        page.keyboard.press("Escape")
        page.locator("#filters-toggle").click()
        page.locator('[data-param="has_text"] select').select_option("true")
        expect(page.locator(".card")).to_have_count(1, timeout=TIMEOUT)
        expect(page.locator("#filter-count")).to_have_text("1")
        page.locator(".card").first.click()
        expect(page.locator("#viewer-ocr")).to_be_visible(timeout=TIMEOUT)
    assert httpx.URL(searches[-1]).params["has_text"] == "true"
