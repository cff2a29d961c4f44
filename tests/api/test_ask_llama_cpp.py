"""Ask against a real OpenAI-compatible server no one here wrote: llama-cpp-python's own
(`python -m llama_cpp.server`) on the tiny random GGUF the captioner tests build. Its words are
noise; the round trip is real: capdex's request, the server's chat template, generation, its
JSON and its server-sent events, capdex's parsing, citations and API."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from capdex.api.app import create_app
from capdex.indexer.pipeline import Indexer
from capdex.llm import chat_client
from capdex.settings import Settings
from capdex.store.db import Database
from tests.api.serving import configured, free_port, serving
from tests.api.test_ask_api import events

pytestmark = pytest.mark.slow


def _unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"the llama.cpp server test must run in CI, but {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """llama-cpp-python's server on a free loopback port, serving the tiny model as "tiny"."""
    for module in ("llama_cpp", "gguf", "sse_starlette", "starlette_context"):
        try:
            __import__(module)
        except ImportError:
            _unavailable(f"{module} is not installed (pip install 'capdex[moondream,llm-server]')")
    from tests.captioners.tiny_models import build_gguf_text_model

    folder = tmp_path_factory.mktemp("llama-server")
    model = build_gguf_text_model(folder / "tiny.gguf")
    port = free_port()
    log = (folder / "server.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--model_alias", "tiny",
         "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "4096", "--n_threads", "1"],
        stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if process.poll() is not None:
                pytest.fail(f"llama_cpp.server exited: {(folder / 'server.log').read_text()[-2000:]}")
            try:
                if httpx.get(f"{url}/v1/models", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("llama_cpp.server did not start within 120 s")
            time.sleep(0.25)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def test_the_chat_client_talks_to_llama_cpp(llama_server: str, tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, llm_endpoint=llama_server, llm_model="tiny",
                        ask_max_tokens=16, llm_timeout=60)
    client = chat_client(settings)
    answer = client.complete("You answer briefly.", "Which photo shows the beach? [#1]")
    assert isinstance(answer.text, str) and answer.model == "tiny"
    with client.stream("You answer briefly.", "Which photo shows the beach? [#1]") as stream:
        pieces = list(stream)
    assert stream.model == "tiny" and len(pieces) >= 1
    assert all(isinstance(piece, str) for piece in pieces)
    # (Not equal to the whole answer: the random model writes raw byte tokens, and the server
    # streams those that end mid-character differently.)
    client.close()


def test_ask_round_trip_through_the_api(llama_server: str, settings: Settings,
                                        colour_folder: Path, embedder, colour_captioner) -> None:
    Indexer(settings, Database(settings.db_url), embedder=embedder).run([colour_folder])
    app = create_app(configured(settings, llm_endpoint=llama_server, llm_model="tiny",
                                ask_max_tokens=24, llm_timeout=60, min_score=0.0))
    with serving(app) as url:
        whole = httpx.post(f"{url}/api/ask", json={"question": "which photo is green?", "k": 3},
                           timeout=120)
        streamed = httpx.post(f"{url}/api/ask", json={"question": "which photo is green?",
                                                      "k": 3, "stream": True}, timeout=120)
        app.state.jobs.shutdown()
    assert whole.status_code == 200, whole.text
    data = whole.json()
    assert data["model"] == "tiny" and isinstance(data["answer"], str)
    assert len(data["photos"]) == 3 and set(data["cited"]) <= {p["id"] for p in data["photos"]}
    got = events(streamed)
    assert got[0][0] == "photos" and got[-1][0] == "done", got[-1]
    done = got[-1][1]
    assert done["model"] == "tiny" and isinstance(done["answer"], str)
    assert set(done["cited"]) <= {p["id"] for p in done["photos"]}
