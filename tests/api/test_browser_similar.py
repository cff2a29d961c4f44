"""The photo view's Similar photos in a real browser, with the real tagger (issue 19): the
re-encoded copy comes first as "Same picture", every photo shows its score."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from capdex.api.app import create_app
from capdex.indexer.pipeline import Indexer
from capdex.samples import write_samples
from capdex.settings import Settings
from capdex.store.db import Database
from tests.api.browser import chromium, page_of
from tests.api.serving import serving
from tests.api.test_browser import TIMEOUT, expect, search
from tests.search.test_similar import reencoded_copy

pytestmark = [pytest.mark.slow, pytest.mark.browser]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as instance:
        yield instance


def test_similar_photos_show_scores_and_the_copy_first(browser: Any, tmp_path: Path,
                                                        embedder) -> None:
    photos = tmp_path / "photos"
    written = write_samples(photos)
    keep = {"chelsea-the-cat.png", "coffee-cup.png", "astronaut-eileen-collins.png",
            "red-motorcycle.png"}
    for path in written:
        if path.name not in keep:
            path.unlink()
    reencoded_copy(photos / "chelsea-the-cat.png", photos / "chelsea-small.jpg")
    settings = Settings(data_dir=tmp_path / "data", photo_roots=[photos], ocr=False)
    Indexer(settings, Database(settings.db_url), embedder=embedder).run([photos])
    with serving(create_app(settings)) as url, page_of(browser, url) as page:
        search(page, "cat")
        page.locator(".card", has=page.locator("img[alt*='cat']")).first.click()
        expect(page.locator("#viewer-meta")).to_contain_text("chelsea", timeout=TIMEOUT)
        shown = page.locator("#viewer-meta").inner_text()
        twin = "chelsea-small.jpg" if "chelsea-the-cat.png" in shown else "chelsea-the-cat.png"
        expect(page.locator("#similar")).to_be_visible(timeout=TIMEOUT)
        expect(page.locator("#similar-by")).to_contain_text("By how they look")
        scores = page.locator("#similar-list .similar-score")
        expect(scores).to_have_count(4)
        expect(scores.first).to_have_text(re.compile(r"^Same picture · \d+%$"))
        for i in range(1, 4):
            expect(scores.nth(i)).to_have_text(re.compile(r"^\d+% alike$"))
        assert re.search(r"looks 0\.[89]\d", scores.first.get_attribute("title") or "")
        page.locator("#similar-list a").first.click()  # the copy opens in the viewer
        expect(page.locator("#viewer-meta")).to_contain_text(twin, timeout=TIMEOUT)
