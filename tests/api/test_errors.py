"""Error answers: a reason in `detail`, never internals; the documented 422 shape is true."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from capdex.api.app import create_app
from capdex.settings import Settings
from tests.api.serving import serving


def test_numbers_too_big_for_the_database_are_422_and_crashes_say_nothing_internal(settings: Settings) -> None:
    app = create_app(settings)

    @app.get("/test/overflow")
    def overflow() -> None:
        raise OverflowError("Python int too large to convert to SQLite INTEGER")

    @app.get("/test/crash")
    def crash() -> None:
        raise RuntimeError("secret internals /etc/capdex")

    with serving(app) as url:
        response = httpx.get(f"{url}/test/overflow")
        assert response.status_code == 422 and "out of range" in response.json()["detail"]
        response = httpx.get(f"{url}/test/crash")
        assert response.status_code == 500 and "internal error" in response.json()["detail"]
        assert "secret" not in response.text


def test_the_422_schema_is_the_one_error_shape(settings: Settings) -> None:
    schema = create_app(settings).openapi()
    shape = schema["components"]["schemas"]["HTTPValidationError"]
    assert shape["required"] == ["detail", "errors"]
    assert shape["properties"]["detail"]["type"] == "string"
    assert shape["properties"]["errors"]["type"] == "array"


# -- one error shape, no echo, limits (issue 19 "Error bodies", issue 20 point 6) ---------------
@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("roots")
    settings = Settings(data_dir=tmp_path_factory.mktemp("data"), photo_roots=[root])
    with serving(create_app(settings)) as url:
        yield url


def one_shape(response: httpx.Response) -> dict:
    body = response.json()
    assert set(body) == {"detail", "errors"} and isinstance(body["detail"], str), body
    assert isinstance(body["errors"], list) and body["detail"]
    return body


@pytest.mark.parametrize("params", [{}, {"q": ""}, {"q": "   "}, {"q": "x", "k": "many"},
                                    {"q": "x", "mode": "fuzzy"}, {"q": "x" * 501}])
def test_every_bad_search_is_422_in_one_shape(server: str, params: dict) -> None:
    response = httpx.get(f"{server}/api/search", params=params)
    assert response.status_code == 422
    one_shape(response)


def test_field_errors_name_the_field_and_never_echo_the_input(server: str) -> None:
    body = one_shape(httpx.get(f"{server}/api/search", params={"q": "x", "k": "secret-value"}))
    assert body["errors"][0]["loc"] == ["query", "k"] and body["detail"].startswith("k: ")
    assert "secret-value" not in str(body) and "input" not in body["errors"][0]
    missing = one_shape(httpx.get(f"{server}/api/search"))
    assert missing["detail"] == "q: Field required"


@pytest.mark.parametrize("path", ["/api/photos/999999", "/api/nope", "/api/jobs/0123456789ab"])
def test_404s_have_the_one_shape_too(server: str, path: str) -> None:
    response = httpx.get(server + path)
    assert response.status_code == 404
    assert one_shape(response)["errors"] == []


@pytest.mark.parametrize("param", ["folder", "camera", "taken_after", "taken_before", "mode",
                                   "sort"])
def test_overlong_search_filters_are_422_not_500(server: str, param: str) -> None:
    """Issue 20, point 6: 50,000 characters of folder= gave "LIKE or GLOB pattern too complex"."""
    value = "/" + "a" * 50_000 if param == "folder" else "a" * 50_000
    response = httpx.get(f"{server}/api/search", params={"q": "cat", param: value})
    assert response.status_code == 422, response.text[:200]
    assert param in one_shape(response)["detail"] and "aaaaaaaaaa" not in response.text


def test_the_last_day_there_is_is_a_valid_bound(server: str) -> None:
    for param in ("taken_before", "taken_after"):
        response = httpx.get(f"{server}/api/search", params={"q": "cat", param: "9999-12-31"})
        assert response.status_code in (200, 501), response.text  # 501: no embedder here


LONE = '"\\ud800"'  # JSON for a lone surrogate


@pytest.mark.parametrize(("method", "path", "body"), [
    ("POST", "/api/index", '{"paths": [' + LONE + ']}'),
    ("POST", "/api/index", '{' + LONE + ': 1}'),
    ("PUT", "/api/photos/1/caption", '{"caption": ' + LONE + '}'),
    ("PUT", "/api/photos/1/caption", '{"caption": 5, ' + LONE + ': ' + LONE + '}'),
    ("POST", "/api/ask", '{"question": ' + LONE + '}'),
])
def test_a_lone_surrogate_is_a_4xx_never_a_500(server: str, method: str, path: str,
                                               body: str) -> None:
    response = httpx.request(method, server + path, content=body.encode(),
                             headers={"Content-Type": "application/json"})
    assert 400 <= response.status_code < 500, (response.status_code, response.text)
    one_shape(response)


def test_a_caption_with_a_lone_surrogate_is_refused_with_a_reason(
        settings: Settings, colour_folder, embedder, colour_captioner) -> None:
    from capdex.indexer.pipeline import Indexer
    from capdex.store.db import Database

    Indexer(settings, Database(settings.db_url), embedder=embedder).run([colour_folder])
    with serving(create_app(settings)) as url:
        photo = httpx.get(f"{url}/api/photos").json()["results"][0]["id"]
        response = httpx.put(f"{url}/api/photos/{photo}/caption",
                             content=b'{"caption": "a cat \\ud800"}',
                             headers={"Content-Type": "application/json"})
        assert response.status_code == 422, response.text
        assert "caption" in one_shape(response)["detail"]
        assert httpx.get(f"{url}/api/photos/{photo}").json()["caption_source"] == "machine"
