"""Hardening over real HTTP: API key, body limit, CORS, safe headers, static path escapes."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from capdex.api.app import create_app
from capdex.api.security import is_loopback, keys_match
from capdex.settings import Settings
from tests.api.serving import configured, serving

KEY = "correct horse battery staple"
# The first request may load the embedding model.
http = httpx.Client(timeout=60)


@pytest.fixture(scope="module")
def open_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    settings = Settings(data_dir=tmp_path_factory.mktemp("open"), api_key=None, cors_origins=[])
    with serving(create_app(settings)) as url:
        yield url


@pytest.fixture(scope="module")
def keyed_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    settings = Settings(data_dir=tmp_path_factory.mktemp("keyed"), api_key=KEY)
    with serving(create_app(settings)) as url:
        yield url


# -- API key ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("path", ["/api/status", "/api/search?q=cat", "/api/photos/1",
                                  "/api/photos/1/thumbnail", "/api/jobs", "/api/captioners",
                                  "/openapi.json", "/docs", "/api/nope"])
def test_everything_but_health_and_the_page_shell_needs_the_key(keyed_server: str, path: str) -> None:
    missing = http.get(keyed_server + path)
    assert missing.status_code == 401 and "X-API-Key" in missing.json()["detail"]
    wrong = http.get(keyed_server + path, headers={"X-API-Key": KEY + "x"})
    assert wrong.status_code == 401 and "wrong API key" in wrong.json()["detail"]


def test_writes_need_the_key_too(keyed_server: str) -> None:
    response = http.post(f"{keyed_server}/api/index", json={"paths": []})
    assert response.status_code == 401


def test_the_right_key_opens_the_api(keyed_server: str) -> None:
    response = http.get(f"{keyed_server}/api/status", headers={"X-API-Key": KEY})
    assert response.status_code == 200 and response.json()["photos"] == 0


@pytest.mark.parametrize("path", ["/healthz", "/", "/static/app.js", "/favicon.ico"])
def test_health_and_page_shell_are_public(keyed_server: str, path: str) -> None:
    assert http.get(keyed_server + path).status_code == 200


def test_no_key_configured_means_open(open_server: str) -> None:
    assert http.get(f"{open_server}/api/status").status_code == 200


def test_keys_match_is_exact() -> None:
    assert keys_match("abc", "abc")
    assert not keys_match(None, "abc") and not keys_match("ab", "abc")
    assert not keys_match("abc ", "abc") and not keys_match("ABC", "abc")
    assert keys_match("ключ", "ключ")


def test_blank_key_setting_means_no_key(monkeypatch: pytest.MonkeyPatch, data_dir: Path) -> None:
    monkeypatch.setenv("CAPDEX_API_KEY", "  ")
    assert Settings(data_dir=data_dir).api_key is None


# -- request size ---------------------------------------------------------------------------------
def test_oversized_body_is_413_by_content_length(settings: Settings) -> None:
    small = configured(settings, max_request_bytes=2048)
    with serving(create_app(small)) as url:
        response = http.post(f"{url}/api/index", content=b"x" * 5000,
                              headers={"Content-Type": "application/json"})
        assert response.status_code == 413 and "2048 bytes" in response.json()["detail"]


def test_oversized_streamed_body_is_413(settings: Settings) -> None:
    small = configured(settings, max_request_bytes=2048)

    def chunks() -> Iterator[bytes]:
        for _ in range(10):
            yield b'{"paths": ["' + b"a" * 600

    with serving(create_app(small)) as url:
        response = http.post(f"{url}/api/index", content=chunks(),
                              headers={"Content-Type": "application/json"})
        assert response.status_code == 413


def test_oversized_headers_are_refused(open_server: str) -> None:
    response = http.get(f"{open_server}/api/status", headers={"X-Junk": "a" * 100_000})
    assert response.status_code == 431


def test_malformed_json_body_is_422(open_server: str) -> None:
    response = http.post(f"{open_server}/api/index", content=b"{not json",
                          headers={"Content-Type": "application/json"})
    assert response.status_code == 422


# -- CORS and headers -----------------------------------------------------------------------------
def test_cors_is_off_by_default(open_server: str) -> None:
    response = http.get(f"{open_server}/api/status", headers={"Origin": "http://evil.example"})
    assert "access-control-allow-origin" not in response.headers
    preflight = http.options(f"{open_server}/api/index", headers={
        "Origin": "http://evil.example", "Access-Control-Request-Method": "POST"})
    assert "access-control-allow-origin" not in preflight.headers


def test_cors_allow_list(settings: Settings) -> None:
    allowed = "http://photos.home.arpa"
    with serving(create_app(configured(settings, cors_origins=[allowed], api_key=KEY))) as url:
        ok = http.options(f"{url}/api/search", headers={
            "Origin": allowed, "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "X-API-Key"})
        assert ok.status_code == 200 and ok.headers["access-control-allow-origin"] == allowed
        other = http.get(f"{url}/api/status", headers={"Origin": "http://evil.example",
                                                          "X-API-Key": KEY})
        assert "access-control-allow-origin" not in other.headers


def test_page_has_a_strict_content_security_policy(open_server: str) -> None:
    page = http.get(f"{open_server}/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["x-frame-options"] == "DENY"
    assert http.get(f"{open_server}/api/status").headers["x-content-type-options"] == "nosniff"


# -- files only by id; static files stay in their folder -------------------------------------------
ESCAPES = ["/static/../api/app.py", "/static/..%2fapp.py", "/static/..%2f..%2fcapdex%2fsettings.py",
           "/static/%2e%2e/app.py", "/static/%2e%2e%2f%2e%2e%2fpyproject.toml",
           "/static/....//app.py", "/static/..\\app.py", "/static/%2fetc%2fpasswd",
           "/static//etc/passwd", "/static/%00", "/static/..%252fapp.py"]


@pytest.mark.parametrize("path", ESCAPES)
def test_static_files_cannot_escape_their_folder(open_server: str, path: str) -> None:
    # A raw socket, so no client library normalises the path before it is sent.
    host, port = open_server.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    status = int(data.split(b" ", 2)[1])
    assert status in (400, 404, 405), (path, data[:200])
    assert b"def create_app" not in data and b"root:" not in data and b"CAPDEX_" not in data


def test_no_route_takes_a_file_path(open_server: str) -> None:
    spec = http.get(f"{open_server}/openapi.json").json()
    for route, methods in spec["paths"].items():
        for operation in methods.values():
            for param in operation.get("parameters", []):
                assert param["name"] not in ("path", "file", "filename"), (route, param)


# -- loopback -------------------------------------------------------------------------------------
@pytest.mark.parametrize("host,expected", [("127.0.0.1", True), ("127.0.0.53", True),
                                           ("localhost", True), ("::1", True), ("[::1]", True),
                                           ("0.0.0.0", False), ("::", False), ("192.168.1.2", False),
                                           ("example.org", False), ("", False)])
def test_is_loopback(host: str, expected: bool) -> None:
    assert is_loopback(host) is expected
