"""A chat LLM behind an HTTP endpoint: what every protocol shares (configuration, the HTTP client,
one answer or a stream of text, bounded length, errors). Protocols are `capdex.llm.protocols`.

Posting, timeouts, retries and error messages are `capdex.http_json`'s, the same the vision
captioners use. A stream is retried only until its answer starts.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from capdex import http_json

if TYPE_CHECKING:
    from capdex.settings import Settings


class LLMError(RuntimeError):
    """The LLM could not answer (unreachable, too slow, an error, a malformed answer); the
    message names the endpoint and says what happened."""


class LLMNotConfigured(RuntimeError):
    """No LLM is configured, or its configuration cannot work; the message says what to set."""


@dataclass
class ChatAnswer:
    text: str
    model: str | None
    #: The answer was longer than `ask_max_answer_chars` and was cut there.
    truncated: bool = False


@dataclass
class Delta:
    """A piece of a streamed answer: text and/or the model that writes it."""

    text: str = ""
    model: str | None = None


class ChatClient(ABC):
    """Sends one system instruction and one user message; answers with text."""

    protocol: ClassVar[str]
    default_endpoint: ClassVar[str | None] = None
    default_model: ClassVar[str]

    def __init__(self, settings: Settings, endpoint: str, model: str | None,
                 api_key: str | None) -> None:
        self.settings = settings
        self.endpoint = endpoint.rstrip("/")
        self.model = model or self.default_model
        self.api_key = api_key
        self._client: Any = None
        self._lock = threading.Lock()

    # -- what each protocol says --------------------------------------------------------------
    @property
    @abstractmethod
    def url(self) -> str:
        """Where chats are posted."""

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}

    @abstractmethod
    def body(self, system: str, user: str, stream: bool) -> dict[str, Any]:
        """The request for one chat."""

    @abstractmethod
    def answer_of(self, body: Any) -> tuple[str | None, str | None]:
        """(text, model) of a whole answer; KeyError/TypeError/IndexError if malformed."""

    @abstractmethod
    def deltas(self, lines: Iterator[str]) -> Iterator[Delta]:
        """The pieces of a streamed answer, from its body's lines."""

    # -- shared ---------------------------------------------------------------------------------
    def unfinished(self) -> LLMError:
        """The error for a stream that ended without the protocol's end-of-answer mark."""
        return LLMError(f"{self.label} {self.url} ended its answer before finishing it (the "
                        f"stream broke off, or is not a {self.protocol} stream)")

    @property
    def label(self) -> str:
        return f"LLM ({self.protocol}) endpoint"

    @property
    def retry(self) -> http_json.Retry:
        s = self.settings
        return http_json.Retry(s.llm_timeout, s.llm_retries, s.captioner_retry_backoff)

    def describe(self) -> str:
        """Protocol, model and where, for status lines (never the key)."""
        return f"{self.protocol}:{self.model} at {self.endpoint}"

    def _http(self) -> Any:
        with self._lock:
            if self._client is None:
                try:
                    import httpx
                except ImportError:
                    raise LLMNotConfigured("asking an LLM needs the Python package 'httpx', "
                                           "which is not installed: pip install 'capdex[http]'"
                                           ) from None
                self._client = httpx.Client(timeout=self.settings.llm_timeout)
            return self._client

    def complete(self, system: str, user: str) -> ChatAnswer:
        """The whole answer at once."""
        client = self._http()
        try:
            body = http_json.post_json(client, self.url, self.body(system, user, False),
                                       self.headers(), self.retry, self.label)
        except http_json.EndpointError as exc:
            raise LLMError(str(exc)) from None
        try:
            text, model = self.answer_of(body)
        except (KeyError, IndexError, TypeError, AttributeError) as exc:
            raise LLMError(f"{self.label} {self.url} answered in an unexpected shape "
                           f"({exc!r}): {str(body)[:200]}") from None
        if not isinstance(text, str):
            raise LLMError(f"{self.label} {self.url} answered without text: {str(body)[:200]}")
        limit = self.settings.ask_max_answer_chars
        return ChatAnswer(text[:limit], model or self.model, len(text) > limit)

    @contextmanager
    def stream(self, system: str, user: str) -> Iterator[ChatStream]:
        """The answer as it is written: iterate the `ChatStream` for text pieces. Opening it
        raises LLMError when the LLM cannot be reached or refuses."""
        client = self._http()
        try:
            with http_json.open_post(client, self.url, self.body(system, user, True),
                                     self.headers(), self.retry, self.label) as response:
                yield ChatStream(self, response)
        except http_json.EndpointError as exc:
            raise LLMError(str(exc)) from None

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None


class ChatStream:
    """The text of a streamed answer, piece by piece; `model` and `truncated` are known as the
    pieces arrive. A server that answers a stream request with one JSON body is read as one."""

    def __init__(self, client: ChatClient, response: Any) -> None:
        self.client = client
        self.response = response
        self.model: str | None = client.model
        self.truncated = False

    def __iter__(self) -> Iterator[str]:
        client = self.client
        limit = client.settings.ask_max_answer_chars
        deadline = http_json.Deadline(client.settings.llm_timeout)
        lines = http_json.lines(self.response, http_json.MAX_ANSWER_BYTES, client.label,
                                client.url, deadline)
        written = 0
        try:
            if "application/json" in self.response.headers.get("content-type", ""):
                pieces: Iterator[Delta] = self._whole(lines)
            else:
                pieces = client.deltas(lines)
            for piece in pieces:
                if piece.model:
                    self.model = piece.model
                if not piece.text:
                    continue
                room = limit - written
                if len(piece.text) > room:
                    self.truncated = True
                    if room > 0:
                        yield piece.text[:room]
                    return
                written += len(piece.text)
                yield piece.text
        except http_json.EndpointError as exc:
            raise LLMError(str(exc)) from None
        except (KeyError, IndexError, TypeError, AttributeError, ValueError) as exc:
            raise LLMError(f"{client.label} {client.url} streamed an answer in an unexpected "
                           f"shape ({exc!r})") from None

    def _whole(self, lines: Iterator[str]) -> Iterator[Delta]:
        import json

        body = json.loads("\n".join(lines))
        text, model = self.client.answer_of(body)
        if not isinstance(text, str):
            raise LLMError(f"{self.client.label} {self.client.url} answered without text: "
                           f"{str(body)[:200]}")
        yield Delta(text, model)
