"""JSON over HTTP to the model servers capdex talks to (vision captioners, the ask LLM): one
POST with a timeout, retries with backoff, a bounded answer, and errors that name the endpoint.

Connection failures, timeouts, 429, 5xx and Anthropic's 529 (overloaded) are retried; other 4xx
answers are not (retrying cannot fix them). Keys travel in headers the caller builds and never
appear in a message. httpx is imported by the caller (`capdex[http]`); clients are passed in.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

RETRY_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504, 529})
#: Largest answer read from a model server; beyond it the answer is refused, not parsed.
MAX_ANSWER_BYTES = 4 * 1024 * 1024


class EndpointError(RuntimeError):
    """A model server could not be used; the message names it and says what went wrong."""


@dataclass(frozen=True)
class Retry:
    """How long to wait for a server and how often to try again."""

    timeout: float
    retries: int = 0
    backoff: float = 1.0

    @property
    def tries(self) -> int:
        return self.retries + 1


def error_message(response: Any) -> str:
    """The error an Ollama/OpenAI/Anthropic-style server put in its body, or the start of it."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:200].strip() or response.reason_phrase
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        error = error.get("message")
    return str(error or body)[:200]


def with_v1(endpoint: str, path: str) -> str:
    """`endpoint` + "/v1" + `path`, accepting endpoints written with or without the "/v1"."""
    endpoint = endpoint.rstrip("/")
    base = endpoint if endpoint.endswith("/v1") else endpoint + "/v1"
    return base + path


class _TryAgain(Exception):
    """One try failed in a way another try may not (the message says how)."""


def _send(client: Any, url: str, payload: dict[str, Any], headers: dict[str, str],
          retry: Retry, label: str) -> Any:
    """One POST, its body not yet read; a 2xx response, or _TryAgain / EndpointError."""
    import httpx

    try:
        response = client.send(client.build_request("POST", url, json=payload, headers=headers,
                                                    timeout=retry.timeout), stream=True)
    except httpx.TimeoutException:
        raise _TryAgain(f"no answer within {retry.timeout:g}s") from None
    except httpx.TransportError as exc:
        raise _TryAgain(f"cannot connect ({exc.__class__.__name__}: {exc})") from None
    if response.status_code < 400:
        return response
    try:
        response.read()
        reason = error_message(response)
    except httpx.HTTPError as exc:
        reason = f"(its body could not be read: {exc.__class__.__name__})"
    finally:
        response.close()
    if response.status_code in RETRY_STATUS:
        raise _TryAgain(f"HTTP {response.status_code}: {reason}")
    raise EndpointError(f"{label} {url} refused the request with HTTP "
                        f"{response.status_code}: {reason}")


def _retrying(retry: Retry, label: str, url: str, attempt_once: Any) -> Any:
    last_error = ""
    for attempt in range(retry.tries):
        if attempt:
            time.sleep(retry.backoff * 2 ** (attempt - 1))
        try:
            return attempt_once()
        except _TryAgain as exc:
            last_error = str(exc)
    raise EndpointError(f"{label} {url} failed after {retry.tries} "
                        f"{'try' if retry.tries == 1 else 'tries'}: {last_error}")


@contextmanager
def open_post(client: Any, url: str, payload: dict[str, Any], headers: dict[str, str],
              retry: Retry, label: str) -> Iterator[Any]:
    """A streamed POST answered 2xx, retried as the module says; yields the httpx response,
    whose body the caller reads as it arrives (`lines`). Once the answer has started it is not
    tried again: what was read may already be shown. `label` names the endpoint in messages,
    e.g. "ollama endpoint"."""
    response = _retrying(retry, label, url,
                         lambda: _send(client, url, payload, headers, retry, label))
    try:
        yield response
    finally:
        response.close()


def post_json(client: Any, url: str, payload: dict[str, Any], headers: dict[str, str],
              retry: Retry, label: str, max_bytes: int = MAX_ANSWER_BYTES) -> Any:
    """POST `payload` and return the JSON answer. Failures to connect, timeouts and answers
    that break off are tried again; an answer larger than `max_bytes` or not JSON is an
    EndpointError at once."""
    import httpx

    def once() -> bytes:
        response = _send(client, url, payload, headers, retry, label)
        try:
            return read_limited(response, max_bytes, label, url, Deadline(retry.timeout))
        except httpx.TimeoutException:
            raise _TryAgain(f"no complete answer within {retry.timeout:g}s") from None
        except httpx.TransportError as exc:
            raise _TryAgain(f"the answer broke off ({exc.__class__.__name__}: {exc})") from None
        finally:
            response.close()

    body = _retrying(retry, label, url, once)
    try:
        return json.loads(body)
    except ValueError:
        text = body[:200].decode("utf-8", "replace")
        raise EndpointError(f"{label} {url} did not answer with JSON: {text!r}") from None


class Deadline:
    """The time an answer must be complete by: a server trickling bytes cannot hold a caller
    longer than the timeout (httpx's own timeout is per read)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.at = time.monotonic() + seconds

    def check(self, label: str, url: str) -> None:
        if time.monotonic() > self.at:
            raise EndpointError(f"{label} {url} sent no complete answer within {self.seconds:g}s")


def read_limited(response: Any, max_bytes: int, label: str, url: str,
                 deadline: Deadline | None = None) -> bytes:
    """The whole body of a streamed response, refusing one over `max_bytes`."""
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_bytes():
        size += len(chunk)
        if size > max_bytes:
            raise EndpointError(f"{label} {url} answered with more than {_size(max_bytes)}; "
                                f"refused")
        chunks.append(chunk)
        if deadline is not None:
            deadline.check(label, url)
    return b"".join(chunks)


def lines(response: Any, max_bytes: int, label: str, url: str,
          deadline: Deadline | None = None) -> Iterator[str]:
    """The lines of a streamed body (server-sent events, NDJSON) as they arrive, refusing a
    body over `max_bytes` in all; httpx errors while reading become EndpointErrors."""
    import httpx

    pending = b""
    size = 0
    try:
        for chunk in response.iter_bytes():
            size += len(chunk)
            if size > max_bytes:
                raise EndpointError(f"{label} {url} answered with more than "
                                    f"{_size(max_bytes)}; refused")
            pending += chunk
            *complete, pending = pending.split(b"\n")
            for line in complete:
                yield line.rstrip(b"\r").decode("utf-8", "replace")
            if deadline is not None:
                deadline.check(label, url)
    except httpx.TimeoutException:
        raise EndpointError(f"{label} {url} stopped answering (nothing for "
                            f"{deadline.seconds if deadline else 0:g}s)") from None
    except httpx.TransportError as exc:
        raise EndpointError(f"{label} {url} broke off its answer "
                            f"({exc.__class__.__name__}: {exc})") from None
    if pending:
        yield pending.rstrip(b"\r").decode("utf-8", "replace")


def _size(n: int) -> str:
    return f"{n // (1024 * 1024)} MiB" if n >= 1024 * 1024 and n % (1024 * 1024) == 0 else f"{n} bytes"
