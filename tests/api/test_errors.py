"""Error answers: a reason in `detail`, never internals; the documented 422 shape is true."""

from __future__ import annotations

import httpx

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


def test_422_schema_admits_a_sentence(settings: Settings) -> None:
    schema = create_app(settings).openapi()
    detail = schema["components"]["schemas"]["HTTPValidationError"]["properties"]["detail"]
    assert {"type": "string"} in detail["anyOf"]
    assert any(option.get("type") == "array" for option in detail["anyOf"])
