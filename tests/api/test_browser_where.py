"""The web page with where and when (issue 15): weak matches under their own heading, what the
query was read as, and the photo's place in the viewer."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from capdex.api.app import create_app
from capdex.indexer.pipeline import Indexer
from capdex.settings import Settings
from capdex.store.db import Database
from tests.api.browser import chromium, page_of
from tests.api.serving import serving
from tests.api.test_browser import TIMEOUT, expect, search
from tests.search.test_where_when import write_where_when_photos

pytestmark = [pytest.mark.slow, pytest.mark.browser]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as instance:
        yield instance


def test_weak_matches_show_under_their_heading_and_places_in_the_viewer(
        browser: Any, settings: Settings, tmp_path: Path, embedder, colour_captioner) -> None:
    Indexer(settings, Database(settings.db_url), embedder=embedder, ocr=False).run(
        [write_where_when_photos(tmp_path / "photos")])
    with serving(create_app(settings)) as url, page_of(browser, url) as page:
        page.locator("#q").fill("an elephant playing the violin")
        expect(page.locator("#weak-title")).to_be_visible(timeout=TIMEOUT)
        expect(page.locator("#weak-title")).to_have_text("No strong matches — closest photos")
        expect(page.locator("#summary")).to_contain_text("closely")
        assert page.locator(".card.weak").count() >= 1
        assert page.locator(".card:not(.weak)").count() == 0

        first = search(page, "red in Lisbon")
        expect(page.locator("#weak-title")).to_be_hidden()
        expect(page.locator("#notes")).to_contain_text("in Lisbon")
        first.click()
        expect(page.locator("#viewer")).to_contain_text("Portugal", timeout=TIMEOUT)
