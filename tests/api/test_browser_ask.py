"""The page's Ask box in a real browser (Debian's chromium), with the stub LLM on loopback: the
answer streams in, citations are links to the photos, cited photos show as thumbnails; the
photo view answers questions about its photo; without an LLM the page says what to set."""

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
from tests.api.serving import configured, serving
from tests.api.test_ask_api import ids_by_colour
from tests.api.test_browser import KEY, TIMEOUT, expect
from tests.llm.chat_stub import ChatStub

pytestmark = [pytest.mark.slow, pytest.mark.browser]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as instance:
        yield instance


@pytest.fixture
def indexed(settings: Settings, colour_folder: Path, embedder, colour_captioner) -> Settings:
    Indexer(settings, Database(settings.db_url), embedder=embedder).run([colour_folder])
    return configured(settings, min_score=0.0, llm_retries=0, llm_timeout=10.0)


def ask(page: Any, question: str) -> None:
    page.locator("#ask-toggle").click()
    expect(page.locator("#ask-input")).to_be_focused()
    page.keyboard.type(question)
    page.keyboard.press("Enter")


def test_the_answer_streams_in_with_its_cited_photos(browser: Any, indexed: Settings,
                                                     chat_stub: ChatStub) -> None:
    app = create_app(configured(indexed, llm_endpoint=chat_stub.url,
                                captioner_endpoint=chat_stub.url))
    with serving(app) as url, page_of(browser, url) as page:
        green = ids_by_colour(url)["green"]
        chat_stub.behaviour.answer = (f"The green photo [#{green}] is the one you mean; "
                                      f"ignore [#999999]. It is plain green.")
        chat_stub.behaviour.piece, chat_stub.behaviour.pause = 3, 0.08
        ask(page, "which photo is green?")
        expect(page.locator("#ask-stop")).to_be_visible(timeout=TIMEOUT)  # still writing
        expect(page.locator("#ask-answer.writing")).to_be_attached()
        answer = page.locator("#ask-answer")
        expect(answer).to_have_text(f"The green photo #{green} is the one you mean; ignore. "
                                    "It is plain green.", timeout=TIMEOUT)
        expect(page.locator("#ask-answer.writing")).to_have_count(0)
        expect(page.locator("#ask-stop")).to_be_hidden()
        assert "999999" not in answer.inner_text()
        expect(page.locator("#ask-photos-title")).to_have_text("Cited photos")
        cited = page.locator("#ask-photos .card")
        expect(cited).to_have_count(1)
        assert cited.get_attribute("data-id") == str(green)
        expect(cited.locator("img")).to_have_class("loaded", timeout=TIMEOUT)
        expect(page.locator("#ask-about")).to_contain_text("Answered by stub-model")

        answer.locator("a.cite").click()  # a citation opens its photo
        expect(page.locator("#viewer")).to_be_visible(timeout=TIMEOUT)
        expect(page.locator("#viewer-caption")).to_have_text("a plain green picture")

        # ... where a question about that photo goes to a captioner that takes a prompt
        chat_stub.behaviour.answer, chat_stub.behaviour.pause = "It is green all over.", 0
        page.locator("#photo-ask-captioner").select_option("ollama")
        page.locator("#photo-ask-input").fill("What colour is it?")
        page.locator("#photo-ask-input").press("Enter")
        expect(page.locator("#photo-ask-answer")).to_have_text("It is green all over.",
                                                               timeout=TIMEOUT)
        assert chat_stub.requests[-1].body["messages"][0]["images"]
        page.locator("#photo-ask-captioner").select_option("")  # the colour captioner: no prompt
        page.locator("#photo-ask-input").press("Enter")
        expect(page.locator("#photo-ask-answer.error")).to_contain_text("captioners that can",
                                                                        timeout=TIMEOUT)
        page.keyboard.press("Escape")
        cited.click()  # and so does a cited thumbnail
        expect(page.locator("#viewer-caption")).to_have_text("a plain green picture",
                                                             timeout=TIMEOUT)
        app.state.jobs.shutdown()


def test_without_an_llm_the_page_says_what_to_set_and_shows_the_photos(
        browser: Any, indexed: Settings) -> None:
    app = create_app(configured(indexed, api_key=KEY))
    with serving(app) as url, page_of(browser, url, ready=False) as page:
        page.locator("#key-input").fill(KEY)
        page.keyboard.press("Enter")
        page.wait_for_selector("body[data-ready=true]", state="attached")
        ask(page, "which photo is red?")  # POSTed with the key header, as every call
        expect(page.locator("#ask-error")).to_contain_text("CAPDEX_LLM_ENDPOINT", timeout=TIMEOUT)
        expect(page.locator("#ask-photos-title")).to_have_text("Photos that match")
        expect(page.locator("#ask-photos .card").first).to_contain_text("a plain red picture")
        app.state.jobs.shutdown()
