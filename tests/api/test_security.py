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
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
                     .encode())
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


# -- serving photo files (issue 20, points 7, 8, 10) ---------------------------------------------
@pytest.fixture
def photo_server(settings: Settings, colour_folder: Path, embedder, colour_captioner):
    """A server with photo roots, over an indexed colour folder; yields (url, red photo's id)."""
    from capdex.indexer.pipeline import Indexer
    from capdex.store.db import Database
    from tests.api.serving import configured

    Indexer(settings, Database(settings.db_url), embedder=embedder).run([colour_folder])
    with serving(create_app(configured(settings, photo_roots=[colour_folder]))) as url:
        listed = http.get(f"{url}/api/photos", params={"limit": 100}).json()["results"]
        red = next(p["id"] for p in listed if p["path"].endswith("/red.jpg"))
        yield url, red


def _forget_cached_images(settings: Settings) -> None:
    import shutil

    for folder in ("thumbnails", "previews"):
        shutil.rmtree(settings.data_dir / folder, ignore_errors=True)


IMAGE_ROUTES = ("/file", "/thumbnail", "/preview")


def test_an_indexed_photo_replaced_by_a_symlink_to_a_private_file_is_not_served(
        photo_server, colour_folder: Path, tmp_path: Path, settings: Settings) -> None:
    """Issue 20, point 7: `/file` served whatever the stored path pointed at now."""
    url, red = photo_server
    secret = tmp_path / "secret.txt"
    secret.write_bytes(b"private key material\n" * 10)
    secret.chmod(0o600)
    _forget_cached_images(settings)
    (colour_folder / "red.jpg").unlink()
    (colour_folder / "red.jpg").symlink_to(secret)
    for route in IMAGE_ROUTES:
        response = http.get(f"{url}/api/photos/{red}{route}")
        assert response.status_code == 404, (route, response.status_code)
        assert b"private key" not in response.content


def test_a_link_to_the_same_bytes_outside_the_roots_is_not_served(
        photo_server, colour_folder: Path, tmp_path: Path, settings: Settings) -> None:
    url, red = photo_server
    copy = tmp_path / "elsewhere" / "red.jpg"
    copy.parent.mkdir()
    copy.write_bytes((colour_folder / "red.jpg").read_bytes())
    _forget_cached_images(settings)
    (colour_folder / "red.jpg").unlink()
    (colour_folder / "red.jpg").symlink_to(copy)
    for route in IMAGE_ROUTES:
        response = http.get(f"{url}/api/photos/{red}{route}")
        assert response.status_code == 404 and "photo root" in response.json()["detail"], route


def test_a_file_overwritten_since_indexing_is_not_served_the_same_bytes_touched_are(
        photo_server, colour_folder: Path, settings: Settings) -> None:
    import os

    from tests.conftest import write_colour_photo

    url, red = photo_server
    original = (colour_folder / "red.jpg").read_bytes()
    os.utime(colour_folder / "red.jpg", ns=(1, 1))  # same bytes, another mtime: checked by hash
    served = http.get(f"{url}/api/photos/{red}/file")
    assert served.status_code == 200 and served.content == original
    assert served.headers["content-type"] == "image/jpeg"
    write_colour_photo(colour_folder / "red.jpg", "blue", seed=7)  # other bytes, same path
    _forget_cached_images(settings)
    for route in IMAGE_ROUTES:
        response = http.get(f"{url}/api/photos/{red}{route}")
        assert response.status_code == 404 and "changed since" in response.json()["detail"], route


def test_a_photo_swapped_for_a_fifo_is_404_at_once(photo_server, colour_folder: Path,
                                                  settings: Settings) -> None:
    import os

    url, red = photo_server
    _forget_cached_images(settings)
    (colour_folder / "red.jpg").unlink()
    os.mkfifo(colour_folder / "red.jpg")
    for route in IMAGE_ROUTES:
        response = httpx.get(f"{url}/api/photos/{red}{route}", timeout=10)
        assert response.status_code == 404 and "not a regular file" in response.json()["detail"]


def test_indexing_a_root_over_http_does_not_follow_a_link_out_of_it(
        photo_server, colour_folder: Path, tmp_path: Path) -> None:
    """Issue 20, point 8: POST /api/index of the root indexed `root/link-out/out.jpg`."""
    import time

    from tests.conftest import write_colour_photo

    url, _ = photo_server
    write_colour_photo(tmp_path / "outside" / "out.jpg", "yellow", seed=99)
    (colour_folder / "link-out").symlink_to(tmp_path / "outside")
    job = http.post(f"{url}/api/index", json={"captioner": "test-colour"})
    assert job.status_code in (200, 202), job.text
    deadline = time.monotonic() + 120
    while (state := http.get(f"{url}/api/jobs/{job.json()['id']}").json())["state"] == "running":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert state["state"] == "done", state
    listed = http.get(f"{url}/api/photos", params={"limit": 100}).json()["results"]
    assert not [p for p in listed if "out.jpg" in p["path"]]
    assert [p for p in listed if p["path"].endswith("/red.jpg")]


def test_previews_decode_each_photo_once_and_at_most_n_at_a_time(
        settings: Settings, colour_folder: Path, embedder, colour_captioner, monkeypatch) -> None:
    """Issue 20, point 10: 16 concurrent previews of uncached 120-MP photos took 22.8 GB."""
    import threading
    import time
    from concurrent.futures import ThreadPoolExecutor

    import capdex.images
    from capdex.indexer.pipeline import Indexer
    from capdex.store.db import Database
    from tests.api.serving import configured

    Indexer(settings, Database(settings.db_url), embedder=embedder).run([colour_folder])
    _forget_cached_images(settings)
    real = capdex.images.decode_image
    lock = threading.Lock()
    running, seen = [0], {"max": 0, "calls": 0, "hints": set()}

    def slow_decode(path, **kwargs):
        with lock:
            running[0] += 1
            seen["calls"] += 1
            seen["max"] = max(seen["max"], running[0])
            seen["hints"].add(kwargs.get("size_hint"))
        try:
            time.sleep(0.3)
            return real(path, **kwargs)
        finally:
            with lock:
                running[0] -= 1

    monkeypatch.setattr(capdex.images, "decode_image", slow_decode)
    with serving(create_app(configured(settings, preview_decodes=2))) as url:
        ids = [p["id"] for p in http.get(f"{url}/api/photos").json()["results"]]
        assert len(ids) == 6

        def get(photo_id: int) -> int:
            return http.get(f"{url}/api/photos/{photo_id}/preview").status_code

        with ThreadPoolExecutor(16) as pool:
            same = list(pool.map(get, [ids[0]] * 8))
        assert same == [200] * 8 and seen["calls"] == 1  # eight requests, one decode
        with ThreadPoolExecutor(16) as pool:
            codes = list(pool.map(get, ids[1:] * 3))
        assert codes == [200] * 15
        assert seen["calls"] == 6 and seen["max"] <= 2
        assert seen["hints"] == {1600}  # decoded at the preview's size (JPEG draft mode)


def test_decode_slots_follow_the_setting_or_the_memory() -> None:
    from capdex.api.photo_files import decode_slots

    assert decode_slots(120_000_000, 3) == 3
    assert 1 <= decode_slots(120_000_000) <= 64
    assert decode_slots(10**12) == 1  # an image that big: one at a time


@pytest.mark.parametrize(("host", "answered"), [
    ("127.0.0.1:8000", True), ("localhost:8000", True), ("[::1]:8000", True), ("localhost", True),
    ("evil.example", False), ("evil.example:8000", False), ("127.0.0.1.evil.example", False),
    ("192.168.1.5:8000", False)])
def test_an_open_loopback_server_answers_only_to_loopback_names(open_server: str, host: str,
                                                                 answered: bool) -> None:
    """DNS rebinding: a page at evil.example rebound to 127.0.0.1 must not read the library."""
    response = httpx.get(f"{open_server}/api/status", headers={"Host": host})
    if answered:
        assert response.status_code == 200 and "photos" in response.json()
    else:
        assert response.status_code == 400 and "photos" not in response.json()
        assert response.json()["detail"].startswith("host: ")


def test_a_keyed_server_leaves_the_host_to_the_key(keyed_server: str) -> None:
    response = httpx.get(f"{keyed_server}/api/status", headers={"Host": "photos.example",
                                                                 "X-API-Key": KEY})
    assert response.status_code == 200
