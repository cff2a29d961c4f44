"""A loopback HTTP server speaking just enough of Ollama's and OpenAI's chat APIs and
Anthropic's Messages API.

It answers on 127.0.0.1 only, records every request, and can be told to fail: an error answer
with a status code, or a slow answer (to test timeouts).
"""

from __future__ import annotations

import base64
import io
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from PIL import Image


@dataclass
class Recorded:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


@dataclass
class Behaviour:
    #: Status codes to answer with, one per request, before answering normally.
    failures: list[tuple[int, str]] = field(default_factory=list)
    delay: float = 0.0
    caption: str = "A dog sitting on the grass."
    malformed: bool = False
    #: Anthropic answers: the content blocks to send (default: one text block with `caption`).
    content_blocks: list[dict[str, Any]] | None = None


def decode_images(body: dict[str, Any]) -> list[Image.Image]:
    """The images in an Ollama, OpenAI or Anthropic chat request, decoded."""
    encoded = []
    for message in body.get("messages", []):
        encoded += message.get("images", [])
        if isinstance(message.get("content"), list):
            for part in message["content"]:
                if part.get("type") == "image_url":
                    url = part["image_url"]["url"]
                    assert url.startswith("data:image/jpeg;base64,"), url[:40]
                    encoded.append(url.split(",", 1)[1])
                elif part.get("type") == "image":
                    source = part["source"]
                    assert source["type"] == "base64", source
                    assert source["media_type"] == "image/jpeg", source
                    encoded.append(source["data"])
    return [Image.open(io.BytesIO(base64.b64decode(data))) for data in encoded]


ANTHROPIC_VERSION = "2023-06-01"


def anthropic_problem(headers: Any, body: dict[str, Any]) -> tuple[int, str, str] | None:
    """What Anthropic's API would refuse in this request: (status, error type, message)."""
    if headers.get("anthropic-version") != ANTHROPIC_VERSION:
        return 400, "invalid_request_error", "anthropic-version: header is required"
    if not headers.get("x-api-key"):
        return 401, "authentication_error", "x-api-key header is required"
    if not isinstance(body.get("max_tokens"), int):
        return 400, "invalid_request_error", "max_tokens: Field required"
    messages = body.get("messages")
    if not messages or messages[0].get("role") != "user":
        return 400, "invalid_request_error", "messages: first message must use the user role"
    return None


class FakeLLMServer:
    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self.behaviour = Behaviour()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:  # keep test output clean
                pass

            def do_POST(self) -> None:  # http.server's naming
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length) or b"{}")
                server.requests.append(Recorded(self.path, dict(self.headers), body))
                behaviour = server.behaviour
                if behaviour.delay:
                    time.sleep(behaviour.delay)
                if behaviour.failures:
                    status, message = behaviour.failures.pop(0)
                    if self.path.startswith("/api/"):
                        self._send(status, {"error": message})
                    elif self.path == "/v1/messages":
                        self._anthropic_error(status, "api_error", message)
                    else:
                        self._send(status, {"error": {"message": message, "type": "test"}})
                    return
                if self.path == "/v1/messages" and (
                    problem := anthropic_problem(self.headers, body)
                ):
                    self._anthropic_error(*problem)
                    return
                if behaviour.malformed:
                    self._send(200, {"unexpected": True})
                elif self.path == "/api/chat":
                    self._send(
                        200,
                        {
                            "model": body.get("model"),
                            "message": {"role": "assistant", "content": behaviour.caption},
                            "done": True,
                        },
                    )
                elif self.path == "/v1/chat/completions":
                    self._send(
                        200,
                        {
                            "id": "chatcmpl-test",
                            "object": "chat.completion",
                            "model": body.get("model"),
                            "choices": [
                                {
                                    "index": 0,
                                    "message": {
                                        "role": "assistant",
                                        "content": behaviour.caption,
                                    },
                                    "finish_reason": "stop",
                                }
                            ],
                        },
                    )
                elif self.path == "/v1/messages":
                    blocks = behaviour.content_blocks
                    if blocks is None:
                        blocks = [{"type": "text", "text": behaviour.caption}]
                    self._send(
                        200,
                        {
                            "id": "msg_test",
                            "type": "message",
                            "role": "assistant",
                            "model": body.get("model"),
                            "content": blocks,
                            "stop_reason": "end_turn",
                            "usage": {"input_tokens": 10, "output_tokens": 8},
                        },
                    )
                else:
                    self._send(404, {"error": f"no route {self.path}"})

            def _anthropic_error(self, status: int, kind: str, message: str) -> None:
                self._send(status, {"type": "error", "error": {"type": kind, "message": message}})

            def _send(self, status: int, payload: dict[str, Any]) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                try:
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout tests)

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FakeLLMServer:
        self._thread.start()
        return self

    def reset(self) -> None:
        self.requests.clear()
        self.behaviour = Behaviour()

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
