"""HTTP hardening as small ASGI middlewares: API key, request size limit, CORS, safe headers.

Pure ASGI (not BaseHTTPMiddleware) so responses stream and nothing is buffered. The order, from
the outside in: size limits → security headers → CORS (so preflights need no key) → API key.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from capdex.api.errors import error_body
from capdex.settings import Settings

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

API_KEY_HEADER = "x-api-key"
#: Paths anyone may fetch: the liveness probe, and the page shell, which holds no data and must
#: load before it can ask for the key.
PUBLIC_PATHS = frozenset({"/healthz", "/", "/favicon.ico"})
PUBLIC_PREFIXES = ("/static/",)
#: The page's Content-Security-Policy: only our own scripts and styles; images may be blob: URLs
#: (the page fetches images with the key header and shows them as blobs).
PAGE_CSP = (
    "default-src 'self'; img-src 'self' blob: data:; script-src 'self'; style-src 'self'; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
    "form-action 'self'"
)

#: /docs and /redoc (Swagger UI and ReDoc from the fastapi-offline package): their inline start-up
#: script, injected styles and ReDoc's blob: worker are allowed, but nothing from another host,
#: so ReDoc's bundled Redocly logo (an <img> from cdn.redoc.ly) never leaves this machine.
DOCS_CSP = (
    "default-src 'self'; img-src 'self' data: blob:; script-src 'self' 'unsafe-inline' blob:; "
    "style-src 'self' 'unsafe-inline'; worker-src 'self' blob:; connect-src 'self'; "
    "font-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)
DOCS_PATHS = frozenset({"/docs", "/docs/oauth2-redirect", "/redoc"})


def is_loopback(host: str) -> bool:
    """True only for addresses that cannot be reached from another machine."""
    host = host.strip().strip("[]")
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name could resolve anywhere: treat it as reachable


def keys_match(given: str | None, expected: str) -> bool:
    """Constant-time comparison, so response timing does not reveal how much of a key matched."""
    if given is None:
        return False
    return hmac.compare_digest(given.encode("utf-8", "surrogateescape"),
                               expected.encode("utf-8", "surrogateescape"))


async def _send_json(send: Send, status: int, detail: str,
                     headers: list[tuple[bytes, bytes]] | None = None) -> None:
    body = json.dumps(error_body(detail)).encode()
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
        *(headers or []),
    ]})
    await send({"type": "http.response.body", "body": body})


class ApiKeyMiddleware:
    """Requires header X-API-Key on every request except the public paths."""

    def __init__(self, app: ASGIApp, key: str) -> None:
        self.app = app
        self.key = key

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or _is_public(scope["path"]):
            await self.app(scope, receive, send)
            return
        given = None
        for name, value in scope["headers"]:
            if name == API_KEY_HEADER.encode():
                given = value.decode("latin-1")
                break
        if not keys_match(given, self.key):
            reason = "missing API key" if given is None else "wrong API key"
            await _send_json(send, 401, f"{reason}: send it in the X-API-Key header",
                             [(b"www-authenticate", b'ApiKey header="X-API-Key"')])
            return
        await self.app(scope, receive, send)


def _is_public(path: str) -> bool:
    return path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES)


class RequestLimitMiddleware:
    """Refuses request bodies over `limit` bytes with 413 (by Content-Length, or counted while
    streaming) and header blocks over `header_limit` bytes with 431."""

    def __init__(self, app: ASGIApp, limit: int, header_limit: int = 32 * 1024) -> None:
        self.app = app
        self.limit = limit
        self.header_limit = header_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if sum(len(name) + len(value) for name, value in scope["headers"]) > self.header_limit:
            await _send_json(send, 431, f"request headers over {self.header_limit} bytes")
            return
        too_large = f"request body over the limit of {self.limit} bytes"
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    await _send_json(send, 400, "malformed Content-Length header")
                    return
                if declared > self.limit:
                    await _send_json(send, 413, too_large)
                    return
        received = 0
        started = refused = False

        async def limited_receive() -> Message:
            nonlocal received, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    # Answer now and tell the app the client went away, so it stops reading;
                    # whatever it tries to send afterwards is dropped.
                    refused = True
                    if not started:
                        await _send_json(send, 413, too_large)
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if refused:
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        await self.app(scope, limited_receive, guarded_send)


def host_name(header: str) -> str:
    """The name in a Host header, without its port: `[::1]:8000` → `::1`, `a.b:80` → `a.b`."""
    if header.startswith("["):
        return header[1:].split("]", 1)[0]
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


class LoopbackHostMiddleware:
    """On a server only this machine can reach (loopback, no key), answer only requests sent to
    a loopback name. A web page whose own DNS name was rebound to 127.0.0.1 still sends that
    name as Host, so it is refused instead of reading the photos (DNS rebinding)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            header = dict(scope.get("headers") or []).get(b"host", b"").decode("latin-1")
            if header and not is_loopback(host_name(header.strip())):
                await _send_json(send, 400, "host: this server answers only to localhost; "
                                 "open it as http://127.0.0.1:PORT (or set CAPDEX_API_KEY)")
                return
        await self.app(scope, receive, send)


class SecurityHeadersMiddleware:
    """nosniff and no-referrer everywhere; a strict CSP and no framing on the web page, and a
    CSP that keeps /docs and /redoc on this machine."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        page = scope["path"] == "/" or scope["path"].startswith("/static/")
        docs = scope["path"] in DOCS_PATHS

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers += [(b"x-content-type-options", b"nosniff"),
                            (b"referrer-policy", b"no-referrer")]
                if page:
                    headers += [(b"content-security-policy", PAGE_CSP.encode()),
                                (b"x-frame-options", b"DENY")]
                elif docs:
                    headers += [(b"content-security-policy", DOCS_CSP.encode())]
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, with_headers)


def install_security(app: FastAPI, settings: Settings) -> None:
    """Add the middlewares `settings` asks for (added last = outermost)."""
    if settings.api_key is not None:
        app.add_middleware(ApiKeyMiddleware, key=settings.api_key.get_secret_value())
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware, allow_origins=settings.cors_origins, allow_credentials=False,
            allow_methods=["GET", "POST", "PUT"], allow_headers=["X-API-Key", "Content-Type"],
        )
    if settings.api_key is None and is_loopback(settings.host):
        app.add_middleware(LoopbackHostMiddleware)
    app.add_middleware(SecurityHeadersMiddleware)
    app.add_middleware(RequestLimitMiddleware, limit=settings.max_request_bytes)
