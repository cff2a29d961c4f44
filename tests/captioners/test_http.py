"""Ollama, OpenAI-compatible and Anthropic captioners against a loopback server."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest
from PIL import Image

from capdex.settings import Settings
from capdex.captioners import CaptionerError, create
from tests.captioners.conftest import make_settings
from tests.captioners.fake_llm_server import FakeLLMServer, decode_images


def _captioner(tmp_path: Path, name: str, endpoint: str, **values: object):
    values = {"captioner_retry_backoff": 0.01, "captioner_timeout": 5.0, **values}
    return create(name, make_settings(tmp_path, name, captioner_endpoint=endpoint, **values))


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_ollama_sends_a_bounded_jpeg_and_reads_the_answer(
    tmp_path: Path, llm_server: FakeLLMServer
) -> None:
    llm_server.behaviour.caption = '  "A dog sitting on the grass."\n\nIt looks happy.'
    captioner = _captioner(
        tmp_path, "ollama", llm_server.url, captioner_model="llava:7b", captioner_image_max_side=256
    )
    captions = captioner.caption_batch([Image.new("RGB", (1600, 900), (0, 128, 0))])
    assert captions == ["A dog sitting on the grass"]
    (request,) = llm_server.requests
    assert request.path == "/api/chat"
    assert request.body["model"] == "llava:7b" and request.body["stream"] is False
    assert request.body["messages"][0]["content"] == Settings().llm_prompt
    (image,) = decode_images(request.body)
    assert image.format == "JPEG" and image.size == (256, 144)
    assert captioner.version.startswith("ollama:llava:7b;")


@pytest.mark.parametrize("endpoint_suffix", ["", "/v1"])
def test_openai_sends_a_data_url_and_the_key_from_the_environment(
    tmp_path: Path,
    llm_server: FakeLLMServer,
    monkeypatch: pytest.MonkeyPatch,
    endpoint_suffix: str,
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-123")
    captioner = _captioner(
        tmp_path, "openai", llm_server.url + endpoint_suffix, captioner_model="gpt-test"
    )
    assert captioner.caption(Image.new("RGB", (32, 32))) == "A dog sitting on the grass"
    (request,) = llm_server.requests
    assert request.path == "/v1/chat/completions"
    assert request.headers["Authorization"] == "Bearer sk-test-123"
    assert request.body["model"] == "gpt-test"
    assert decode_images(request.body)[0].size == (32, 32)


def test_capdex_key_wins_and_no_key_sends_no_header(
    tmp_path: Path, llm_server: FakeLLMServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    _captioner(tmp_path, "openai", llm_server.url).caption(Image.new("RGB", (8, 8)))
    assert "Authorization" not in llm_server.requests[-1].headers
    monkeypatch.setenv("OPENAI_API_KEY", "sk-generic")
    monkeypatch.setenv("CAPDEX_OPENAI_API_KEY", "sk-capdex")
    _captioner(tmp_path, "openai", llm_server.url).caption(Image.new("RGB", (8, 8)))
    assert llm_server.requests[-1].headers["Authorization"] == "Bearer sk-capdex"


@pytest.mark.parametrize("name", ["ollama", "openai", "anthropic"])
def test_error_answer_is_reported_with_the_endpoint_and_not_retried(
    tmp_path: Path, llm_server: FakeLLMServer, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test")
    llm_server.behaviour.failures = [(404, "model 'nope' not found")]
    captioner = _captioner(tmp_path, name, llm_server.url, captioner_retries=3)
    with pytest.raises(CaptionerError) as error:
        captioner.caption(Image.new("RGB", (8, 8)))
    message = str(error.value)
    assert llm_server.url in message and "404" in message and "model 'nope' not found" in message
    assert len(llm_server.requests) == 1


def test_server_errors_are_retried_with_backoff(
    tmp_path: Path, llm_server: FakeLLMServer
) -> None:
    llm_server.behaviour.failures = [(503, "loading model"), (500, "oops")]
    captioner = _captioner(
        tmp_path, "ollama", llm_server.url, captioner_retries=2, captioner_retry_backoff=0.05
    )
    started = time.monotonic()
    assert captioner.caption(Image.new("RGB", (8, 8))) == "A dog sitting on the grass"
    assert len(llm_server.requests) == 3
    assert time.monotonic() - started >= 0.05 + 0.1  # 0.05s, then 0.1s


def test_retries_run_out_with_the_last_error(tmp_path: Path, llm_server: FakeLLMServer) -> None:
    llm_server.behaviour.failures = [(500, "still broken")] * 5
    captioner = _captioner(tmp_path, "openai", llm_server.url, captioner_retries=1)
    with pytest.raises(CaptionerError, match="after 2 tries: HTTP 500: still broken"):
        captioner.caption(Image.new("RGB", (8, 8)))


@pytest.mark.parametrize("name", ["ollama", "openai", "anthropic"])
def test_refused_connection_fails_fast_and_names_the_endpoint(tmp_path: Path, name: str) -> None:
    endpoint = f"http://127.0.0.1:{_closed_port()}"
    captioner = _captioner(tmp_path, name, endpoint, captioner_retries=2)
    started = time.monotonic()
    with pytest.raises(CaptionerError) as error:
        captioner.caption(Image.new("RGB", (8, 8)))
    assert time.monotonic() - started < 3
    assert endpoint in str(error.value) and "cannot connect" in str(error.value)


@pytest.mark.parametrize("name", ["ollama", "anthropic"])
def test_slow_server_hits_the_timeout(
    tmp_path: Path, llm_server: FakeLLMServer, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test")
    llm_server.behaviour.delay = 1.5
    captioner = _captioner(
        tmp_path, name, llm_server.url, captioner_timeout=0.3, captioner_retries=0
    )
    started = time.monotonic()
    with pytest.raises(CaptionerError, match=r"no answer within 0\.3s"):
        captioner.caption(Image.new("RGB", (8, 8)))
    assert time.monotonic() - started < 1.4


def test_answer_of_the_wrong_shape(tmp_path: Path, llm_server: FakeLLMServer) -> None:
    llm_server.behaviour.malformed = True
    with pytest.raises(CaptionerError, match="unexpected shape"):
        _captioner(tmp_path, "openai", llm_server.url).caption(Image.new("RGB", (8, 8)))


def test_prompt_setting_is_sent(tmp_path: Path, llm_server: FakeLLMServer) -> None:
    captioner = _captioner(
        tmp_path, "openai", llm_server.url, llm_prompt="List the objects in this photo."
    )
    captioner.caption(Image.new("RGB", (8, 8)))
    text_part = llm_server.requests[-1].body["messages"][0]["content"][0]
    assert text_part == {"type": "text", "text": "List the objects in this photo."}


# --- Anthropic's Messages API ------------------------------------------------------------------


def test_anthropic_sends_a_base64_image_block_with_key_and_version(
    tmp_path: Path, llm_server: FakeLLMServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test-123")
    llm_server.behaviour.caption = "This image shows a dog sitting on the grass."
    captioner = _captioner(
        tmp_path, "anthropic", llm_server.url, captioner_model="claude-test",
        captioner_image_max_side=256, llm_max_tokens=50,
    )
    captions = captioner.caption_batch(
        [Image.new("RGB", (1600, 900), (0, 128, 0)), Image.new("RGB", (20, 30))]
    )
    assert captions == ["a dog sitting on the grass"] * 2  # the chatty opening is gone
    first = llm_server.requests[0]
    assert first.path == "/v1/messages"
    assert first.headers["x-api-key"] == "sk-ant-test-123"
    assert first.headers["anthropic-version"] == "2023-06-01"
    assert "Authorization" not in first.headers
    body = first.body
    assert body["model"] == "claude-test" and body["max_tokens"] == 50
    assert body["temperature"] == 0
    image_block, text_block = body["messages"][0]["content"]
    assert image_block["type"] == "image" and text_block == {
        "type": "text", "text": Settings().llm_prompt,
    }
    assert [image.size for image in decode_images(body)] == [(256, 144)]
    assert decode_images(llm_server.requests[1].body)[0].size == (20, 30)
    assert captioner.version.startswith("anthropic:claude-test;")


def test_anthropic_defaults_and_the_v1_suffix(
    tmp_path: Path, llm_server: FakeLLMServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    default = create("anthropic", make_settings(tmp_path, "anthropic"))
    assert default.url == "https://api.anthropic.com/v1/messages"
    assert default.model == "claude-sonnet-4-5"
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test")
    with_suffix = _captioner(tmp_path, "anthropic", llm_server.url + "/v1")
    assert with_suffix.caption(Image.new("RGB", (8, 8))) == "A dog sitting on the grass"
    assert llm_server.requests[-1].path == "/v1/messages"


def test_anthropic_joins_text_blocks_and_refuses_an_answer_without_text(
    tmp_path: Path, llm_server: FakeLLMServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test")
    captioner = _captioner(tmp_path, "anthropic", llm_server.url)
    llm_server.behaviour.content_blocks = [
        {"type": "text", "text": "Two kayaks on a lake"},
        {"type": "text", "text": " at dawn."},
    ]
    assert captioner.caption(Image.new("RGB", (8, 8))) == "Two kayaks on a lake at dawn"
    llm_server.behaviour.content_blocks = []
    with pytest.raises(CaptionerError, match="answered without text"):
        captioner.caption(Image.new("RGB", (8, 8)))


def test_anthropic_key_comes_from_the_environment_and_capdex_wins(
    tmp_path: Path, llm_server: FakeLLMServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-generic")
    monkeypatch.setenv("CAPDEX_ANTHROPIC_API_KEY", "sk-ant-capdex")
    _captioner(tmp_path, "anthropic", llm_server.url).caption(Image.new("RGB", (8, 8)))
    assert llm_server.requests[-1].headers["x-api-key"] == "sk-ant-capdex"


def test_anthropic_without_a_key_says_so_and_never_calls_the_api(tmp_path: Path) -> None:
    captioner = create("anthropic", make_settings(tmp_path, "anthropic", captioner_retries=0))
    with pytest.raises(CaptionerError, match="ANTHROPIC_API_KEY"):
        captioner.caption(Image.new("RGB", (8, 8)))


def test_anthropic_refusal_names_the_error_but_never_the_key(
    tmp_path: Path, llm_server: FakeLLMServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A gateway at another endpoint gets no key when none is set, and its 401 is reported in
    Anthropic's error shape; a key that is set never appears in an error."""
    captioner = _captioner(tmp_path, "anthropic", llm_server.url, captioner_retries=2)
    with pytest.raises(CaptionerError) as error:
        captioner.caption(Image.new("RGB", (8, 8)))
    assert "401" in str(error.value) and "x-api-key header is required" in str(error.value)
    assert len(llm_server.requests) == 1  # a 401 is not retried
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-secret-value")
    llm_server.behaviour.failures = [(400, "messages: image too large")]
    with pytest.raises(CaptionerError) as error:
        _captioner(tmp_path, "anthropic", llm_server.url).caption(Image.new("RGB", (8, 8)))
    assert "image too large" in str(error.value)
    assert "sk-ant-secret-value" not in str(error.value)
    assert "sk-ant-secret-value" not in repr(Settings())


def test_anthropic_overloaded_529_is_retried(
    tmp_path: Path, llm_server: FakeLLMServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test")
    llm_server.behaviour.failures = [(529, "Overloaded")]
    captioner = _captioner(tmp_path, "anthropic", llm_server.url, captioner_retries=1)
    assert captioner.caption(Image.new("RGB", (8, 8))) == "A dog sitting on the grass"
    assert len(llm_server.requests) == 2


def test_llm_captioners_clean_up_chatty_answers(
    tmp_path: Path, llm_server: FakeLLMServer
) -> None:
    llm_server.behaviour.caption = "Sure! Here's a description: The image depicts two cats."
    for name in ("ollama", "openai"):
        captioner = _captioner(tmp_path, name, llm_server.url)
        assert captioner.caption(Image.new("RGB", (8, 8))) == "two cats"
        assert ";clean=" in captioner.version
