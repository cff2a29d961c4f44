"""The web page's People view on the shared face photos: face crops, naming on click, merging,
and boxes with names on a photo."""

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
from tests.faces_data import PEOPLE, copy_labelled, needs_faces

pytestmark = [pytest.mark.slow, pytest.mark.browser]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as instance:
        yield instance


def test_people_are_named_merged_and_shown_on_photos(browser: Any, settings: Settings,
                                                    tmp_path: Path, embedder, colour_captioner) -> None:
    needs_faces()
    library = copy_labelled(tmp_path / "photos")
    Indexer(settings, Database(settings.db_url), embedder=embedder, ocr=False,
            faces=True).run([library])
    with serving(create_app(settings)) as url, page_of(browser, url) as page:
        page.locator("#people-toggle").click()
        cards = page.locator("#people-list .person")
        expect(cards).to_have_count(len(PEOPLE), timeout=TIMEOUT)
        first = cards.first
        expect(first.locator("img")).to_have_class("loaded", timeout=TIMEOUT)  # the face crop
        first.locator(".person-name").click()
        first.locator("input").fill("Grace Hopper")
        first.locator("button[type=submit]").click()
        expect(cards.first.locator(".person-name")).to_have_text("Grace Hopper", timeout=TIMEOUT)

        second = cards.nth(1)
        second.locator("select").select_option(label="Grace Hopper")  # the same person, found twice
        expect(cards).to_have_count(len(PEOPLE) - 1, timeout=TIMEOUT)
        page.locator("#people-close").click()

        card = search(page, "Grace Hopper")
        expect(page.locator(".card")).to_have_count(4, timeout=TIMEOUT)
        card.click()
        boxes = page.locator("#viewer-faces .face-box")
        expect(boxes).to_have_count(1, timeout=TIMEOUT)
        expect(boxes.first).to_contain_text("Grace Hopper")
        expect(boxes.first).to_be_visible()
        expect(page.locator("#viewer-people-list")).to_contain_text("Grace Hopper")
