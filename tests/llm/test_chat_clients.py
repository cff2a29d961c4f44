"""The ask LLM's three protocols against a stub server on loopback: what is sent, whole and
streamed answers, and every way an LLM can fail."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest

from capdex.llm import LLMError, LLMNotConfigured, chat_client
from capdex.settings import Settings
from tests.llm.chat_stub import PATHS, ChatStub

PROTOCOLS = ["openai", "ollama", "anthropic"]


def _settings(tmp_path: Path, **values: object) -> Settings:
    values = {"llm_timeout": 5.0, "llm_retries": 0, "captioner_retry_backoff": 0.01, **values}
    return Settings(data_dir=tmp_path / "data", **values)


def _client(tmp_path: Path, stub: ChatStub, protocol: str, **values: object):
    values = {"llm": protocol, "llm_endpoint": stub.url, "llm_model": "m-test",
              "llm_api_key": "sk-test-1", **values}
    return chat_client(_settings(tmp_path, **values))


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_whole_answer_and_what_is_sent(tmp_path: Path, chat_stub: ChatStub,
                                         protocol: str) -> None:
    chat_stub.behaviour.answer = "It was in July [#3]."
    client = _client(tmp_path, chat_stub, protocol, ask_max_tokens=77)
    answer = client.complete("SYSTEM TEXT", "USER TEXT")
    assert answer.text == "It was in July [#3]." and answer.model == "stub-model"
    assert not answer.truncated
    (sent,) = chat_stub.requests
    assert sent.path == PATHS[protocol]
    assert sent.body["model"] == "m-test" and sent.body["stream"] is False
    assert sent.system == "SYSTEM TEXT" and sent.user == "USER TEXT"
    assert [m["role"] for m in sent.body["messages"]] == (
        ["user"] if protocol == "anthropic" else ["system", "user"])
    if protocol == "ollama":
        assert sent.body["options"] == {"temperature": 0, "num_predict": 77}
    else:
        assert sent.body["max_tokens"] == 77 and sent.body["temperature"] == 0
    if protocol == "anthropic":
        assert sent.headers["x-api-key"] == "sk-test-1"
        assert sent.headers["anthropic-version"] == "2023-06-01"
        assert "Authorization" not in sent.headers
    else:
        assert sent.headers["Authorization"] == "Bearer sk-test-1"


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_streamed_answer_arrives_in_pieces(tmp_path: Path, chat_stub: ChatStub,
                                             protocol: str) -> None:
    chat_stub.behaviour.answer = "Ségolène was at the beach [#12] in 2023."
    chat_stub.behaviour.piece = 3
    client = _client(tmp_path, chat_stub, protocol)
    with client.stream("s", "u") as stream:
        pieces = list(stream)
    assert len(pieces) > 5 and "".join(pieces) == chat_stub.behaviour.answer
    assert stream.model == "stub-model" and not stream.truncated
    assert chat_stub.requests[0].body["stream"] is True


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_server_that_ignores_stream_is_read_whole(tmp_path: Path, chat_stub: ChatStub,
                                                    protocol: str) -> None:
    chat_stub.behaviour.ignore_stream = True
    with _client(tmp_path, chat_stub, protocol).stream("s", "u") as stream:
        assert "".join(stream) == chat_stub.behaviour.answer


def test_the_v1_suffix_is_optional(tmp_path: Path, chat_stub: ChatStub) -> None:
    for endpoint in (chat_stub.url, chat_stub.url + "/v1", chat_stub.url + "/v1/"):
        client = _client(tmp_path, chat_stub, "openai", llm_endpoint=endpoint)
        assert client.url == chat_stub.url + "/v1/chat/completions"
        client.complete("s", "u")


# -- configuration -------------------------------------------------------------------------------
def test_nothing_configured_names_the_endpoint_setting(tmp_path: Path) -> None:
    with pytest.raises(LLMNotConfigured, match="CAPDEX_LLM_ENDPOINT"):
        chat_client(_settings(tmp_path))


def test_defaults_per_protocol(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    only_endpoint = chat_client(_settings(tmp_path, llm_endpoint="http://127.0.0.1:8080"))
    assert only_endpoint.protocol == "openai"
    assert only_endpoint.url == "http://127.0.0.1:8080/v1/chat/completions"
    ollama = chat_client(_settings(tmp_path, llm="ollama"))
    assert ollama.url == "http://127.0.0.1:11434/api/chat" and ollama.model == "llama3.2"
    with pytest.raises(LLMNotConfigured, match="CAPDEX_LLM_API_KEY"):
        chat_client(_settings(tmp_path, llm="anthropic"))
    with pytest.raises(LLMNotConfigured, match="CAPDEX_LLM_API_KEY"):
        chat_client(_settings(tmp_path, llm="openai"))
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-env")
    claude = chat_client(_settings(tmp_path, llm="anthropic"))
    assert claude.api_key == "sk-ant-env"
    assert claude.url == "https://api.anthropic.com/v1/messages"


def test_settings_come_from_the_environment(tmp_path: Path, chat_stub: ChatStub,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CAPDEX_LLM", "ollama")
    monkeypatch.setenv("CAPDEX_LLM_ENDPOINT", chat_stub.url)
    monkeypatch.setenv("CAPDEX_LLM_MODEL", "qwen2.5:3b")
    monkeypatch.setenv("CAPDEX_LLM_API_KEY", "proxy-key")
    client = chat_client(Settings(data_dir=tmp_path))
    client.complete("s", "u")
    sent = chat_stub.requests[-1]
    assert sent.path == "/api/chat" and sent.body["model"] == "qwen2.5:3b"
    assert sent.headers["Authorization"] == "Bearer proxy-key"
    monkeypatch.setenv("CAPDEX_LLM", "")  # blank means unset: the endpoint alone is OpenAI's
    assert chat_client(Settings(data_dir=tmp_path)).protocol == "openai"


# -- failures ------------------------------------------------------------------------------------
@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_an_llm_that_is_down(tmp_path: Path, chat_stub: ChatStub, protocol: str) -> None:
    endpoint = f"http://127.0.0.1:{_closed_port()}"
    client = _client(tmp_path, chat_stub, protocol, llm_endpoint=endpoint, llm_retries=1)
    started = time.monotonic()
    with pytest.raises(LLMError) as error:
        client.complete("s", "u")
    with pytest.raises(LLMError, match="cannot connect"):
        with client.stream("s", "u"):
            pass
    assert time.monotonic() - started < 3
    message = str(error.value)
    assert endpoint in message and "after 2 tries: cannot connect" in message
    assert "sk-test-1" not in message


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_server_errors_are_retried_then_reported(tmp_path: Path, chat_stub: ChatStub,
                                                 protocol: str) -> None:
    chat_stub.behaviour.failures = [(503, "loading model")]
    client = _client(tmp_path, chat_stub, protocol, llm_retries=1)
    assert client.complete("s", "u").text == chat_stub.behaviour.answer
    chat_stub.behaviour.failures = [(500, "out of memory")] * 2
    with pytest.raises(LLMError, match="after 2 tries: HTTP 500: out of memory"):
        client.complete("s", "u")
    chat_stub.behaviour.failures = [(500, "out of memory")] * 2
    with pytest.raises(LLMError, match="HTTP 500: out of memory"):
        with client.stream("s", "u"):
            pass


def test_a_refusal_is_not_retried(tmp_path: Path, chat_stub: ChatStub) -> None:
    chat_stub.behaviour.failures = [(404, "model 'm-test' not found, try pulling it first")]
    client = _client(tmp_path, chat_stub, "ollama", llm_retries=3)
    with pytest.raises(LLMError, match=r"HTTP 404: model 'm-test' not found"):
        client.complete("s", "u")
    assert len(chat_stub.requests) == 1


@pytest.mark.parametrize("stream", [False, True])
def test_a_slow_llm_hits_the_timeout(tmp_path: Path, chat_stub: ChatStub, stream: bool) -> None:
    chat_stub.behaviour.delay = 2.0
    client = _client(tmp_path, chat_stub, "openai", llm_timeout=0.4)
    started = time.monotonic()
    with pytest.raises(LLMError, match=r"no answer within 0\.4s"):
        if stream:
            with client.stream("s", "u") as pieces:
                list(pieces)
        else:
            client.complete("s", "u")
    assert time.monotonic() - started < 1.8


def test_a_stream_that_stalls_midway(tmp_path: Path, chat_stub: ChatStub) -> None:
    chat_stub.behaviour.stall_after = 2
    client = _client(tmp_path, chat_stub, "ollama", llm_timeout=0.5)
    received: list[str] = []
    with pytest.raises(LLMError, match="stopped answering|within 0.5s"):
        with client.stream("s", "u") as stream:
            for piece in stream:
                received.append(piece)
    assert "".join(received) == chat_stub.behaviour.answer[:8]


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_an_error_in_the_middle_of_a_stream(tmp_path: Path, chat_stub: ChatStub,
                                            protocol: str) -> None:
    chat_stub.behaviour.error_after = 1
    with pytest.raises(LLMError, match="failed while answering: model crashed"):
        with _client(tmp_path, chat_stub, protocol).stream("s", "u") as stream:
            list(stream)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_malformed_answers(tmp_path: Path, chat_stub: ChatStub, protocol: str) -> None:
    client = _client(tmp_path, chat_stub, protocol)
    chat_stub.behaviour.malformed = "text"
    with pytest.raises(LLMError, match="did not answer with JSON: '<html>upstream proxy"):
        client.complete("s", "u")
    with pytest.raises(LLMError, match="ended its answer before finishing it|unexpected shape"):
        with client.stream("s", "u") as stream:
            list(stream)
    chat_stub.behaviour.malformed = "shape"
    with pytest.raises(LLMError, match="unexpected shape|without text"):
        client.complete("s", "u")
    with pytest.raises(LLMError, match="unexpected shape|without text"):
        with client.stream("s", "u") as stream:
            list(stream)


def test_a_huge_answer_is_cut_or_refused(tmp_path: Path, chat_stub: ChatStub) -> None:
    client = _client(tmp_path, chat_stub, "openai", ask_max_answer_chars=1000)
    chat_stub.behaviour.answer = "la " * 20_000
    answer = client.complete("s", "u")
    assert len(answer.text) == 1000 and answer.truncated
    chat_stub.behaviour.piece = 700
    with client.stream("s", "u") as stream:
        streamed = "".join(stream)
    assert streamed == answer.text and stream.truncated
    chat_stub.behaviour.answer = "x" * (5 * 1024 * 1024)
    with pytest.raises(LLMError, match="more than 4 MiB; refused"):
        client.complete("s", "u")
