"""The three chat protocols capdex speaks: OpenAI-compatible `/v1/chat/completions` (also
llama.cpp's and vLLM's servers), Ollama's `/api/chat` and Anthropic's `/v1/messages` — their
requests, whole answers and streamed answers (server-sent events; Ollama: JSON lines)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, ClassVar

from capdex import http_json
from capdex.llm.client import ChatClient, Delta, LLMError


def _sse_data(lines: Iterator[str]) -> Iterator[str]:
    """The `data:` payloads of server-sent events (one line each, as these servers send)."""
    for line in lines:
        if line.startswith("data:"):
            yield line[5:].strip()


class OpenAIChat(ChatClient):
    protocol: ClassVar[str] = "openai"
    default_endpoint: ClassVar[str | None] = "https://api.openai.com/v1"
    default_model: ClassVar[str] = "gpt-4o-mini"

    @property
    def url(self) -> str:
        return http_json.with_v1(self.endpoint, "/chat/completions")

    def body(self, system: str, user: str, stream: bool) -> dict[str, Any]:
        return {
            "model": self.model,
            "messages": [{"role": "system", "content": system},
                         {"role": "user", "content": user}],
            "max_tokens": self.settings.ask_max_tokens,
            "temperature": 0,
            "stream": stream,
        }

    def answer_of(self, body: Any) -> tuple[str | None, str | None]:
        return body["choices"][0]["message"]["content"], body.get("model")

    def deltas(self, lines: Iterator[str]) -> Iterator[Delta]:
        for data in _sse_data(lines):
            if data == "[DONE]":
                return
            chunk = json.loads(data)
            if chunk.get("error"):
                raise LLMError(f"{self.label} {self.url} failed while answering: "
                               f"{_error_text(chunk['error'])}")
            choices = chunk.get("choices") or [{}]
            text = (choices[0].get("delta") or {}).get("content") or ""
            yield Delta(text, chunk.get("model"))
        raise self.unfinished()


class OllamaChat(ChatClient):
    protocol: ClassVar[str] = "ollama"
    default_endpoint: ClassVar[str | None] = "http://127.0.0.1:11434"
    default_model: ClassVar[str] = "llama3.2"

    @property
    def url(self) -> str:
        return self.endpoint + "/api/chat"

    def body(self, system: str, user: str, stream: bool) -> dict[str, Any]:
        return {
            "model": self.model,
            "messages": [{"role": "system", "content": system},
                         {"role": "user", "content": user}],
            "stream": stream,
            "options": {"temperature": 0, "num_predict": self.settings.ask_max_tokens},
        }

    def answer_of(self, body: Any) -> tuple[str | None, str | None]:
        return body["message"]["content"], body.get("model")

    def deltas(self, lines: Iterator[str]) -> Iterator[Delta]:
        for line in lines:
            if not line.strip():
                continue
            chunk = json.loads(line)
            if chunk.get("error"):
                raise LLMError(f"{self.label} {self.url} failed while answering: "
                               f"{_error_text(chunk['error'])}")
            yield Delta((chunk.get("message") or {}).get("content") or "", chunk.get("model"))
            if chunk.get("done"):
                return
        raise self.unfinished()


class AnthropicChat(ChatClient):
    protocol: ClassVar[str] = "anthropic"
    default_endpoint: ClassVar[str | None] = "https://api.anthropic.com"
    default_model: ClassVar[str] = "claude-sonnet-4-5"
    #: The Messages API version the request and answer shapes follow.
    api_version: ClassVar[str] = "2023-06-01"

    @property
    def url(self) -> str:
        return http_json.with_v1(self.endpoint, "/messages")

    def headers(self) -> dict[str, str]:
        headers = {"anthropic-version": self.api_version}
        if self.api_key:
            headers["x-api-key"] = self.api_key
        return headers

    def body(self, system: str, user: str, stream: bool) -> dict[str, Any]:
        return {
            "model": self.model,
            "system": system,
            "messages": [{"role": "user", "content": user}],
            "max_tokens": self.settings.ask_max_tokens,
            "temperature": 0,
            "stream": stream,
        }

    def answer_of(self, body: Any) -> tuple[str | None, str | None]:
        texts = [block["text"] for block in body["content"] if block.get("type") == "text"]
        return ("".join(texts) if texts else None), body.get("model")

    def deltas(self, lines: Iterator[str]) -> Iterator[Delta]:
        for data in _sse_data(lines):
            event = json.loads(data)
            kind = event.get("type")
            if kind == "error":
                raise LLMError(f"{self.label} {self.url} failed while answering: "
                               f"{_error_text(event.get('error'))}")
            if kind == "message_start":
                yield Delta("", (event.get("message") or {}).get("model"))
            elif kind == "content_block_delta" and event["delta"].get("type") == "text_delta":
                yield Delta(event["delta"]["text"])
            elif kind == "message_stop":
                return
        raise self.unfinished()


def _error_text(error: Any) -> str:
    if isinstance(error, dict):
        error = error.get("message") or error
    return str(error)[:200]


PROTOCOLS: dict[str, type[ChatClient]] = {
    cls.protocol: cls for cls in (OpenAIChat, OllamaChat, AnthropicChat)
}
