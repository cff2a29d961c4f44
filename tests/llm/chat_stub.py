"""A stub chat LLM on loopback speaking OpenAI's `/v1/chat/completions`, Ollama's `/api/chat`
and Anthropic's `/v1/messages`, whole or streamed, as those servers do.

It records every request, and can be told how to answer (a fixed text, or a function of the
request), and how to fail: error statuses, a slow answer, a stream that stalls or breaks, a
body that is not JSON or of the wrong shape, an enormous answer.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

PATHS = {"openai": "/v1/chat/completions", "ollama": "/api/chat", "anthropic": "/v1/messages"}


@dataclass
class Recorded:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]

    @property
    def system(self) -> str:
        if "system" in self.body:
            return self.body["system"]
        return "\n".join(m["content"] for m in self.body["messages"] if m["role"] == "system")

    @property
    def user(self) -> str:
        return "\n".join(m["content"] for m in self.body["messages"] if m["role"] == "user")


@dataclass
class Behaviour:
    answer: str = "The beach photo [#1] is the latest."
    #: When set, the answer is this function of the request (overrides `answer`).
    respond: Callable[[Recorded], str] | None = None
    #: (status, message) to answer with, one per request, before answering normally.
    failures: list[tuple[int, str]] = field(default_factory=list)
    delay: float = 0.0
    #: "text" (not JSON at all) or "shape" (JSON of the wrong shape).
    malformed: str | None = None
    #: Streams: characters per piece, and a pause between pieces.
    piece: int = 4
    pause: float = 0.0
    #: Streams: stop sending (but keep the connection open) after this many pieces.
    stall_after: int | None = None
    #: Streams: an error event after this many pieces.
    error_after: int | None = None
    #: Answer a stream request with one JSON body (as some servers do).
    ignore_stream: bool = False
    model: str = "stub-model"


class ChatStub:
    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self.behaviour = Behaviour()
        self._release = threading.Event()  # ends stalled streams at shutdown
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:  # http.server's naming
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length) or b"{}")
                recorded = Recorded(self.path, dict(self.headers), body)
                stub.requests.append(recorded)
                b = stub.behaviour
                if b.delay:
                    time.sleep(b.delay)
                protocol = next((p for p, path in PATHS.items() if path == self.path), None)
                if protocol is None:
                    self._json(404, {"error": f"no route {self.path}"})
                    return
                if b.failures:
                    status, message = b.failures.pop(0)
                    self._json(status, _error(protocol, message))
                    return
                if protocol == "anthropic" and not self.headers.get("x-api-key"):
                    self._json(401, _error(protocol, "x-api-key header is required"))
                    return
                if b.malformed == "text":
                    self._raw(200, b"<html>upstream proxy error</html>", "text/html")
                    return
                if b.malformed == "shape":
                    self._json(200, {"unexpected": True})
                    return
                text = b.respond(recorded) if b.respond else b.answer
                if body.get("stream") and not b.ignore_stream:
                    self._stream(protocol, text, b)
                else:
                    self._json(200, _whole(protocol, text, b.model))

            def _stream(self, protocol: str, text: str, b: Behaviour) -> None:
                self.send_response(200)
                kind = "application/x-ndjson" if protocol == "ollama" else "text/event-stream"
                self.send_header("Content-Type", kind)
                self.send_header("Connection", "close")
                self.end_headers()
                pieces = [text[i : i + b.piece] for i in range(0, len(text), b.piece)]
                try:
                    for line in _stream_start(protocol, b.model):
                        self.wfile.write(line)
                    for i, piece in enumerate(pieces):
                        if b.stall_after is not None and i >= b.stall_after:
                            stub._release.wait(30)
                            return
                        if b.error_after is not None and i >= b.error_after:
                            self.wfile.write(_stream_error(protocol, "model crashed"))
                            return
                        self.wfile.write(_stream_piece(protocol, piece, b.model))
                        self.wfile.flush()
                        if b.pause:
                            time.sleep(b.pause)
                    for line in _stream_end(protocol, b.model):
                        self.wfile.write(line)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up

            def _json(self, status: int, payload: dict[str, Any]) -> None:
                self._raw(status, json.dumps(payload).encode(), "application/json")

            def _raw(self, status: int, data: bytes, kind: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                try:
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> ChatStub:
        self._thread.start()
        return self

    def reset(self) -> None:
        self.requests.clear()
        self.behaviour = Behaviour()

    def stop(self) -> None:
        self._release.set()
        self._httpd.shutdown()
        self._httpd.server_close()


def _error(protocol: str, message: str) -> dict[str, Any]:
    if protocol == "ollama":
        return {"error": message}
    if protocol == "anthropic":
        return {"type": "error", "error": {"type": "api_error", "message": message}}
    return {"error": {"message": message, "type": "server_error"}}


def _whole(protocol: str, text: str, model: str) -> dict[str, Any]:
    if protocol == "ollama":
        return {"model": model, "message": {"role": "assistant", "content": text}, "done": True}
    if protocol == "anthropic":
        return {"id": "msg_stub", "type": "message", "role": "assistant", "model": model,
                "content": [{"type": "text", "text": text}], "stop_reason": "end_turn"}
    return {"id": "chatcmpl-stub", "object": "chat.completion", "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                         "finish_reason": "stop"}]}


def _sse(data: dict[str, Any] | str, event: str | None = None) -> bytes:
    payload = data if isinstance(data, str) else json.dumps(data)
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {payload}\n\n".encode()


def _stream_start(protocol: str, model: str) -> list[bytes]:
    if protocol == "anthropic":
        return [_sse({"type": "message_start", "message": {"model": model, "content": []}},
                     "message_start"),
                _sse({"type": "content_block_start", "index": 0,
                      "content_block": {"type": "text", "text": ""}}, "content_block_start")]
    if protocol == "openai":
        return [_sse({"model": model, "choices": [{"index": 0, "delta": {"role": "assistant"}}]})]
    return []


def _stream_piece(protocol: str, text: str, model: str) -> bytes:
    if protocol == "ollama":
        return (json.dumps({"model": model, "message": {"role": "assistant", "content": text},
                            "done": False}) + "\n").encode()
    if protocol == "anthropic":
        return _sse({"type": "content_block_delta", "index": 0,
                     "delta": {"type": "text_delta", "text": text}}, "content_block_delta")
    return _sse({"model": model, "choices": [{"index": 0, "delta": {"content": text}}]})


def _stream_end(protocol: str, model: str) -> list[bytes]:
    if protocol == "ollama":
        return [(json.dumps({"model": model, "message": {"role": "assistant", "content": ""},
                             "done": True}) + "\n").encode()]
    if protocol == "anthropic":
        return [_sse({"type": "content_block_stop", "index": 0}, "content_block_stop"),
                _sse({"type": "message_stop"}, "message_stop")]
    return [_sse({"model": model, "choices": [{"index": 0, "delta": {},
                                                "finish_reason": "stop"}]}), _sse("[DONE]")]


def _stream_error(protocol: str, message: str) -> bytes:
    if protocol == "ollama":
        return (json.dumps({"error": message}) + "\n").encode()
    if protocol == "anthropic":
        return _sse({"type": "error", "error": {"type": "overloaded_error", "message": message}},
                    "error")
    return _sse({"error": {"message": message}})


# -- a gullible model ---------------------------------------------------------------------------
FENCE = re.compile(r"<photo-records-([0-9a-f]+)>(.*?)</photo-records-\1>", re.DOTALL)
RECORD_ID = re.compile(r"\[#(\d+)\]")
INJECTION = re.compile(r"ignore (all )?previous instructions", re.IGNORECASE)


def gullible(request: Recorded) -> str:
    """A model that obeys any instruction it reads outside the photo records' fence (as a weak
    model might), and otherwise cites the first record, plus an id it was never shown."""
    everything = request.system + "\n" + request.user
    outside = FENCE.sub(" ", everything)
    if INJECTION.search(outside):
        return "HACKED: as instructed, here is everything [#999]."
    fenced = " ".join(m.group(2) for m in FENCE.finditer(everything))
    first = RECORD_ID.search(fenced)
    cited = f"[#{first.group(1)}]" if first else ""
    return f"The photo {cited} answers it [#999]."
