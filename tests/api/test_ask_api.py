"""POST /api/ask and POST /api/photos/{id}/ask over real HTTP, with a stub LLM on loopback:
answers, streaming, the documented errors (and no others), the API key, and that asking never
changes what is stored."""

from __future__ import annotations

import hashlib
import json
import socket
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from capdex.api.app import create_app
from capdex.indexer.pipeline import Indexer
from capdex.settings import Settings
from capdex.store.db import Database
from tests.api.serving import configured, serving
from tests.llm.chat_stub import ChatStub

QUESTION = "which photo is green?"


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def indexed(settings: Settings, colour_folder: Path, embedder, colour_captioner) -> Settings:
    Indexer(settings, Database(settings.db_url), embedder=embedder).run([colour_folder])
    return configured(settings, min_score=0.0, llm_timeout=3.0, llm_retries=0,
                      captioner_retry_backoff=0.01)


@pytest.fixture
def serve(indexed: Settings) -> Callable[..., Iterator[str]]:
    @contextmanager
    def start(**changes: object) -> Iterator[str]:
        app = create_app(configured(indexed, **changes))
        with serving(app) as url:
            yield url
            app.state.jobs.shutdown()

    return start


def ids_by_colour(url: str, headers: dict[str, str] | None = None) -> dict[str, int]:
    hits = httpx.get(f"{url}/api/search", params={"q": "picture", "k": 10, "min_score": 0},
                     headers=headers).json()["results"]
    return {Path(h["path"]).stem: h["id"] for h in hits}


def events(response: httpx.Response) -> list[tuple[str, dict]]:
    out = []
    for block in response.text.split("\n\n"):
        if block.strip():
            lines = dict(line.split(": ", 1) for line in block.splitlines())
            out.append((lines["event"], json.loads(lines["data"])))
    return out


def stored_state(settings: Settings) -> str:
    """Every row of every table and the vector index's bytes: what "nothing changed" means."""
    connection = sqlite3.connect(settings.data_dir / "capdex.db")
    try:
        rows = "\n".join(connection.iterdump())
    finally:
        connection.close()
    index = hashlib.sha256(settings.index_path.read_bytes()).hexdigest()
    files = sorted(str(p.relative_to(settings.data_dir)) for p in settings.data_dir.rglob("*")
                   if p.is_file() and not p.name.endswith(("-wal", "-shm")))
    return f"{rows}\n{index}\n{files}"


def test_an_answer_cites_the_retrieved_photos_only(serve, chat_stub: ChatStub) -> None:
    with serve(llm_endpoint=chat_stub.url) as url:
        green = ids_by_colour(url)["green"]
        chat_stub.behaviour.answer = f"The green one [#{green}]; not [#999999]."
        response = httpx.post(f"{url}/api/ask", json={"question": QUESTION, "k": 3}, timeout=30)
    assert response.status_code == 200, response.text
    data = response.json()
    assert data["answer"] == f"The green one [#{green}]; not."
    assert data["question"] == QUESTION and data["model"] == "stub-model"
    assert data["cited"] == [green] and len(data["photos"]) == 3
    assert data["photos"][0]["id"] == green and data["photos"][0]["cited"] is True
    assert {"id", "path", "caption", "score", "place", "people"} <= set(data["photos"][0])
    assert f"[#{green}] " in chat_stub.requests[-1].user


@pytest.mark.parametrize("protocol", ["openai", "ollama", "anthropic"])
def test_a_streamed_answer(serve, chat_stub: ChatStub, protocol: str) -> None:
    with serve(llm=protocol, llm_endpoint=chat_stub.url, llm_api_key="sk-stub") as url:
        green = ids_by_colour(url)["green"]
        chat_stub.behaviour.answer = f"Green [#{green}] and not [#999999] nor [#{green}, #7]."
        chat_stub.behaviour.piece = 2
        response = httpx.post(f"{url}/api/ask", json={"question": QUESTION, "k": 2,
                                                      "stream": True}, timeout=30)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    got = events(response)
    kinds = [kind for kind, _ in got]
    assert kinds[0] == "photos" and kinds[-1] == "done" and set(kinds[1:-1]) == {"delta"}
    assert got[0][1]["photos"][0]["id"] == green
    text = "".join(data["text"] for kind, data in got if kind == "delta")
    assert "999999" not in text and "#7" not in text
    done = got[-1][1]
    assert done["answer"] == text.strip() == f"Green [#{green}] and not nor [#{green}]."
    assert done["cited"] == [green] and done["photos"][0]["cited"] is True


def test_no_llm_configured_is_a_503_with_the_photos(serve) -> None:
    with serve() as url:
        green = ids_by_colour(url)["green"]
        for stream in (False, True):
            response = httpx.post(f"{url}/api/ask", json={"question": QUESTION,
                                                          "stream": stream}, timeout=30)
            assert response.status_code == 503
            data = response.json()
            assert "CAPDEX_LLM_ENDPOINT" in data["detail"] and data["question"] == QUESTION
            assert data["photos"][0]["id"] == green


@pytest.mark.parametrize("failure", ["down", "slow", "500", "not json", "wrong shape", "huge"])
def test_llm_failures_are_a_502_with_a_reason_and_change_nothing(
        serve, indexed: Settings, chat_stub: ChatStub, failure: str) -> None:
    endpoint = f"http://127.0.0.1:{_closed_port()}" if failure == "down" else chat_stub.url
    expected = {"down": "cannot connect", "slow": r"no answer within 0.5s",
                "500": "HTTP 500: out of memory", "not json": "did not answer with JSON",
                "wrong shape": "unexpected shape|without text|before finishing",
                "huge": "more than 4 MiB; refused"}[failure]
    b = chat_stub.behaviour
    if failure == "slow":
        b.delay = 1.5
    elif failure == "500":
        b.failures = [(500, "out of memory")] * 4
    elif failure == "not json":
        b.malformed = "text"
    elif failure == "wrong shape":
        b.malformed = "shape"
    elif failure == "huge":
        b.answer, b.piece = "x" * (5 * 1024 * 1024), 64 * 1024
    before = stored_state(indexed)
    with serve(llm_endpoint=endpoint, llm_timeout=0.5) as url:
        whole = httpx.post(f"{url}/api/ask", json={"question": QUESTION}, timeout=30)
        b.failures = [(500, "out of memory")] * 4 if failure == "500" else []
        streamed = httpx.post(f"{url}/api/ask", json={"question": QUESTION, "stream": True},
                              timeout=30)
    assert whole.status_code == 502, whole.text
    assert pytest.importorskip("re").search(expected, whole.json()["detail"])
    assert whole.json()["photos"]
    if failure == "huge":  # a stream is cut at the answer's length limit instead
        assert streamed.status_code == 200 and events(streamed)[-1][1]["truncated"] is True
    elif streamed.status_code == 200:  # the answer had started: the stream says what failed
        kind, data = events(streamed)[-1]
        assert kind == "error" and data["status"] == 502
    else:
        assert streamed.status_code == 502 and streamed.json()["photos"]
    assert stored_state(indexed) == before


def test_a_stream_that_fails_midway_ends_with_an_error_event(serve, chat_stub: ChatStub) -> None:
    chat_stub.behaviour.error_after = 2
    with serve(llm_endpoint=chat_stub.url) as url:
        response = httpx.post(f"{url}/api/ask", json={"question": QUESTION, "stream": True},
                              timeout=30)
    got = events(response)
    assert [k for k, _ in got][:1] == ["photos"] and got[-1][0] == "error"
    assert got[-1][1] == {"status": 502, "detail": got[-1][1]["detail"]}
    assert "model crashed" in got[-1][1]["detail"]


def test_a_huge_answer_is_cut(serve, chat_stub: ChatStub) -> None:
    chat_stub.behaviour.answer = "la " * 10_000
    with serve(llm_endpoint=chat_stub.url, ask_max_answer_chars=500) as url:
        data = httpx.post(f"{url}/api/ask", json={"question": QUESTION}, timeout=30).json()
    assert len(data["answer"]) <= 500 and data["truncated"] is True
    assert any("cut" in note for note in data["notes"])


@pytest.mark.parametrize("body", [{"question": ""}, {"question": "   "}, {"question": "x" * 501},
                                  {"question": "q", "k": 0}, {"question": "q", "k": 51},
                                  {"question": "q", "stream": "sometimes"},
                                  {"question": "q", "mode": "keyword"}, {}])
def test_bad_questions_are_422(serve, chat_stub: ChatStub, body: dict) -> None:
    with serve(llm_endpoint=chat_stub.url) as url:
        response = httpx.post(f"{url}/api/ask", json=body, timeout=30)
    assert response.status_code == 422 and response.json()["detail"]
    assert chat_stub.requests == []


def test_the_api_key_guards_both_routes(serve, chat_stub: ChatStub) -> None:
    with serve(llm_endpoint=chat_stub.url, api_key="s3cret-key") as url:
        for path in ("/api/ask", "/api/photos/1/ask"):
            refused = httpx.post(f"{url}{path}", json={"question": QUESTION}, timeout=30)
            assert refused.status_code == 401
            wrong = httpx.post(f"{url}{path}", json={"question": QUESTION}, timeout=30,
                               headers={"X-API-Key": "nope"})
            assert wrong.status_code == 401
        assert chat_stub.requests == []
        ok = httpx.post(f"{url}/api/ask", json={"question": QUESTION}, timeout=30,
                        headers={"X-API-Key": "s3cret-key"})
        assert ok.status_code == 200 and ok.json()["answer"]


# -- one photo ----------------------------------------------------------------------------------
def test_a_question_about_one_photo(serve, chat_stub: ChatStub) -> None:
    chat_stub.behaviour.answer = "It is green all over."
    with serve(captioner_endpoint=chat_stub.url) as url:
        green = ids_by_colour(url)["green"]
        response = httpx.post(f"{url}/api/photos/{green}/ask", timeout=30,
                              json={"question": "What colour is it?", "captioner": "ollama"})
        assert response.status_code == 200, response.text
        assert response.json() == {"id": green, "question": "What colour is it?",
                                   "answer": "It is green all over.", "captioner": "ollama"}
        sent = chat_stub.requests[-1].body["messages"][0]
        assert sent["content"].startswith("What colour is it?") and len(sent["images"]) == 1


def test_one_photo_errors(serve, chat_stub: ChatStub, tmp_path: Path) -> None:
    with serve(captioner_endpoint=f"http://127.0.0.1:{_closed_port()}",
               model_path=tmp_path / "no-model-here") as url:
        green = ids_by_colour(url)["green"]

        def ask(photo: int, **body: object) -> httpx.Response:
            return httpx.post(f"{url}/api/photos/{photo}/ask", timeout=30,
                              json={"question": "What colour?", **body})

        cannot = ask(green)  # the server's captioner is the colour one: it takes no prompt
        assert cannot.status_code == 422
        assert "test-colour" in cannot.json()["detail"]
        assert "anthropic, hf-vlm, moondream2, ollama, openai" in cannot.json()["detail"]
        assert ask(green, captioner="no-such-model").status_code == 422
        assert ask(999_999, captioner="ollama").status_code == 404
        down = ask(green, captioner="ollama")
        assert down.status_code == 502 and "cannot connect" in down.json()["detail"]
        missing = ask(green, captioner="moondream2")
        assert missing.status_code == 503, missing.text
        assert ask(green, captioner="ollama", question=" ").status_code == 422
