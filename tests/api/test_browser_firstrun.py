"""The page as a new user meets it (issue 19), in Debian's chromium: the photo view on a phone,
small photos, /docs offline, a server that went away, searches that replace each other, the
index panel's messages and the captioner choices."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from capdex.api.app import create_app
from capdex.captioners import registry
from capdex.indexer.pipeline import Indexer
from capdex.settings import Settings
from capdex.store.db import Database
from tests.api.browser import chromium, page_of
from tests.api.fakes import GatedCaptioner
from tests.api.serving import configured, serving
from tests.conftest import write_colour_photo

pytestmark = [pytest.mark.slow, pytest.mark.browser]
TIMEOUT = 20_000
PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True,
         "device_scale_factor": 2}
DESKTOP = {"viewport": {"width": 1280, "height": 800}}


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as instance:
        yield instance


@pytest.fixture
def indexed(settings: Settings, colour_folder: Path, embedder, colour_captioner) -> Settings:
    """The colour photos (64×48) and one tall portrait one (600×900), indexed."""
    write_colour_photo(colour_folder / "tall" / "tall-blue.jpg", "blue", size=(600, 900), seed=9)
    GatedCaptioner.gate = threading.Event()
    registry.register(GatedCaptioner)
    Indexer(settings, Database(settings.db_url), embedder=embedder).run([colour_folder])
    return configured(settings, photo_roots=[colour_folder])


@pytest.fixture
def server(indexed: Settings) -> Iterator[str]:
    with serving(create_app(indexed)) as url:
        yield url


def expect(target: Any) -> Any:
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(target)


def search(page: Any, words: str) -> Any:
    """Type into the search box; the first card once the results for `words` show."""
    page.locator("#q").fill(words)
    expect(page.locator("#summary")).to_contain_text(f"“{words}”", timeout=TIMEOUT)
    expect(page.locator("#summary")).not_to_contain_text("Searching for", timeout=TIMEOUT)
    expect(page.locator(".card").first).to_be_visible(timeout=TIMEOUT)
    return page.locator(".card").first


def box(page: Any, selector: str) -> dict[str, float]:
    return page.locator(selector).bounding_box()


def test_phone_photo_view_scrolls_as_one_and_never_overlaps(browser: Any, server: str,
                                                           tmp_path: Path) -> None:
    with page_of(browser, server, **PHONE) as page:
        search(page, "blue")
        ids = [page.locator(".card").nth(i).get_attribute("data-id")
               for i in range(page.locator(".card").count())]
        tall = next(i for i in ids if httpx.get(f"{server}/api/photos/{i}").json()["height"] == 900)
        page.locator(f'.card[data-id="{tall}"]').click()
        expect(page.locator("#viewer-img")).to_have_class("loaded", timeout=TIMEOUT)
        page.screenshot(path=str(tmp_path / "phone-viewer.png"))
        image, caption = box(page, "#viewer-img"), box(page, "#viewer-caption")
        assert image["width"] <= 390 and image["y"] + image["height"] <= caption["y"] + 0.5, \
            "the photo covers its caption"
        viewer = page.locator("#viewer")
        assert viewer.evaluate("v => v.scrollHeight > v.clientHeight")  # more below: it scrolls
        viewer.evaluate("v => v.scrollTo(0, v.scrollHeight)")
        expect(page.locator("#download")).to_be_in_viewport()
        expect(page.locator("#viewer-close")).to_be_in_viewport()  # always at hand
        page.screenshot(path=str(tmp_path / "phone-viewer-scrolled.png"))
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390


def test_small_photos_are_shown_at_their_size_not_blown_up(browser: Any, server: str) -> None:
    with page_of(browser, server, **DESKTOP) as page:
        search(page, "red").click()
        expect(page.locator("#viewer-img")).to_have_class("loaded", timeout=TIMEOUT)
        image = box(page, "#viewer-img")
        assert (image["width"], image["height"]) == (64, 48)
        figure = box(page, ".viewer-image")
        assert figure["width"] > 300  # centred in the photo's box, which stays large


def test_the_download_button_says_what_it_does_away_from_the_caption_buttons(
        browser: Any, server: str) -> None:
    with page_of(browser, server, **DESKTOP) as page:
        search(page, "red").click()
        button = page.locator("#download")
        expect(button).to_have_text("Download original file")
        assert page.locator(".actions #download").count() == 0
        with page.expect_download() as download:
            button.click()
        assert download.value.suggested_filename == "red.jpg"


def test_docs_load_with_the_network_cut_off(browser: Any, server: str) -> None:
    outside: list[str] = []

    def only_this_server(route: Any) -> None:
        if route.request.url.startswith(server):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    with page_of(browser, server, ready=False) as page:
        page.route("**/*", only_this_server)
        page.goto(f"{server}/docs")
        expect(page.locator(".swagger-ui .info .title")).to_contain_text("capdex", timeout=TIMEOUT)
        expect(page.locator(".opblock-summary-path", has_text="/api/search").first).to_be_visible()
        assert not outside, outside


def test_redoc_loads_and_reaches_for_nothing_outside(browser: Any, server: str) -> None:
    """/redoc renders from local files, and its bundle's Redocly logo (an <img> from
    cdn.redoc.ly) is stopped by the docs' CSP before it leaves this machine."""
    outside: list[str] = []

    def only_this_server(route: Any) -> None:  # a request CSP stops never gets here
        if route.request.url.startswith(server):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    with page_of(browser, server, ready=False) as page:
        page.route("**/*", only_this_server)
        page.goto(f"{server}/redoc")
        expect(page.locator("h1", has_text="capdex")).to_be_visible(timeout=TIMEOUT)
        expect(page.get_by_text("/api/search").first).to_be_attached()
        page.wait_for_timeout(500)  # the attribution logo mounts after the first render
        assert not outside, outside


def test_a_lost_server_is_obvious(browser: Any, indexed: Settings) -> None:
    running = serving(create_app(indexed))
    url = running.__enter__()
    try:
        with page_of(browser, url, **DESKTOP) as page:
            page.locator("#q").fill("red")
            expect(page.locator(".card").first).to_be_visible(timeout=TIMEOUT)
            expect(page.locator("#status-label")).to_contain_text("photos", timeout=TIMEOUT)
            running.__exit__(None, None, None)
            page.locator("#q").fill("green")
            error = page.locator("#error")
            expect(error).to_be_visible(timeout=TIMEOUT)
            expect(error).to_contain_text("Server stopped")
            muted = page.evaluate("getComputedStyle(document.querySelector('.muted')).color")
            assert error.evaluate("e => getComputedStyle(e).color") != muted  # red, not grey
            expect(page.locator(".card")).to_have_count(0)  # nothing from the old search
            expect(page.locator("#summary")).to_have_text("")
            button = page.locator("#status-button")
            expect(button).to_have_class("ghost offline", timeout=TIMEOUT)
            expect(page.locator("#status-label")).to_have_text("Server stopped")
            dot = page.locator("#status-button .dot").evaluate(
                "d => getComputedStyle(d).backgroundColor")
            assert dot != "rgb(34, 160, 107)"  # not the green of a live server
            button.click()
            expect(page.locator("#status-counts > div")).to_have_count(0)  # no stale counts
            expect(page.locator("#index-message")).to_contain_text("Cannot reach")
    finally:
        running.__exit__(None, None, None)


def test_a_new_search_clears_the_old_results_while_it_loads(browser: Any, server: str) -> None:
    held: list[Any] = []
    with page_of(browser, server, **DESKTOP) as page:
        page.locator("#q").fill("red")
        expect(page.locator("#summary")).to_contain_text("“red”", timeout=TIMEOUT)
        expect(page.locator(".card").first).to_be_visible()
        page.route(lambda url: "/api/search" in url and "q=green" in url,
                   lambda route: held.append(route))
        page.locator("#q").fill("green")
        expect(page.locator("#summary")).to_have_text("Searching for “green”…", timeout=TIMEOUT)
        expect(page.locator(".card")).to_have_count(0)
        while not held:  # the request is held until the old results are seen gone
            page.wait_for_timeout(50)
        held[0].continue_()
        expect(page.locator("#summary")).to_contain_text("match “green”", timeout=TIMEOUT)
        expect(page.locator(".card-caption").first).to_have_text("a plain green picture")


def test_started_goes_away_when_the_job_ends(browser: Any, server: str,
                                            colour_folder: Path) -> None:
    write_colour_photo(colour_folder / "new" / "green-2.jpg", "green", seed=42)
    with page_of(browser, server, **DESKTOP) as page:
        page.locator("#status-button").click()
        page.locator("#index-paths").fill(str(colour_folder / "new"))
        page.locator("#index-captioner").select_option("test-gated")
        page.locator("#index-form button[type=submit]").click()
        expect(page.locator("#index-message")).to_have_text("Started.", timeout=TIMEOUT)
        GatedCaptioner.gate.set()
        expect(page.locator("#job-list")).to_contain_text("1 new", timeout=TIMEOUT)
        expect(page.locator("#index-message")).to_have_text("")


def test_captioner_lists_offer_only_what_can_run(browser: Any, server: str) -> None:
    offered = httpx.get(f"{server}/api/captioners").json()
    assert "blip-base" in offered["unavailable"]  # no BLIP weights in this data dir
    assert "download" in offered["unavailable"]["blip-base"]
    assert "test-colour" not in offered["unavailable"]
    with page_of(browser, server, **DESKTOP) as page:
        page.locator("#status-button").click()
        counts = page.locator("#status-counts")
        expect(counts).to_contain_text("Captioned by" "test-colour 7", timeout=TIMEOUT)
        expect(counts).to_contain_text("Default captioner" "test-colour")
        options = page.locator("#index-captioner option").all_inner_texts()
        assert "test-colour" in options and "blip-base" not in options
        others = page.locator("#index-unavailable")
        expect(others).to_be_visible()
        others.locator("summary").click()
        expect(others).to_contain_text("blip-base: run `capdex models download blip-base`")
        page.keyboard.press("Escape")
        search(page, "red").click()
        recaption = page.locator("#recaption-model option").all_inner_texts()
        assert "test-colour" in recaption and "blip-base" not in recaption


def test_a_captioner_that_cannot_run_is_refused_with_the_reason(server: str,
                                                                caplog: pytest.LogCaptureFixture) -> None:
    reply = httpx.post(f"{server}/api/index", json={"paths": [], "captioner": "blip-base"})
    assert reply.status_code == 422
    assert "blip-base" in reply.text and "capdex models download blip-base" in reply.text
    assert httpx.get(f"{server}/api/jobs").json()["current"] is None
    assert "Traceback" not in caplog.text


def test_phone_header_is_one_row_of_buttons_above_the_search(browser: Any, server: str) -> None:
    """At 390 px the header buttons share the brand's row (labels become icons with names), so
    the search box and the photos start high, not below a row holding only the index button."""
    with page_of(browser, server, **PHONE) as page:
        for toggle in ("#ask-toggle", "#people-toggle"):  # as a library with faces and an LLM has
            page.locator(toggle).evaluate("b => { b.hidden = false; }")
        buttons = ["#filters-toggle", "#ask-toggle", "#people-toggle", "#status-button"]
        brand = box(page, ".brand")
        for selector in buttons:
            button = box(page, selector)
            assert abs(button["y"] - brand["y"]) < brand["height"], f"{selector} wrapped: {button}"
            assert button["x"] + button["width"] <= 390
        assert box(page, "#q")["y"] < 120
        for name in ("Filters", "Ask", "People"):  # still named for screen readers
            expect(page.get_by_role("button", name=name, exact=True)).to_be_visible()
        expect(page.locator("#status-label")).to_contain_text("photos", timeout=TIMEOUT)
