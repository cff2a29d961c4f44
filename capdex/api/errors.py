"""How errors look to clients: every 4xx and 5xx body is `{"detail": "...", "errors": [...]}`.

`detail` is always one sentence saying what is wrong; `errors` lists the fields at fault
(`loc`, `msg`, `type`) when the request did not validate, and is empty otherwise. Before,
a missing `q=` gave pydantic's list and a blank one a string (issue 19). A body never echoes
what was sent (pydantic's `input`): a lone surrogate in it made the 422 itself fail to encode,
a 500 (issue 20, point 6); text in messages is escaped where it cannot be encoded.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger(__name__)

#: Longest `detail` sent: a list of many field errors is cut, the full list is in `errors`.
MAX_DETAIL = 1000
#: Field errors listed at most.
MAX_ERRORS = 20


def safe_text(value: object) -> str:
    """`value` as text that always encodes as UTF-8 (lone surrogates become `\\udXXX`)."""
    return str(value).encode("utf-8", "backslashreplace").decode("utf-8")


def error_body(detail: object, errors: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The one error shape."""
    text = safe_text(detail)
    if len(text) > MAX_DETAIL:
        text = text[: MAX_DETAIL - 1] + "…"
    return {"detail": text, "errors": errors or []}


def field_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    """Pydantic's errors without the input sent or its context: where, what, which kind."""
    listed = []
    for error in exc.errors()[:MAX_ERRORS]:
        loc = [part if isinstance(part, int) else safe_text(part)[:100]
               for part in error.get("loc", ())]
        listed.append({"loc": loc, "msg": safe_text(error.get("msg", ""))[:300],
                       "type": safe_text(error.get("type", ""))[:100]})
    return listed


def _sentence(errors: list[dict[str, Any]]) -> str:
    """'q: Field required; k: Input should be a valid integer'."""
    parts = []
    for error in errors:
        loc = [str(p) for p in error["loc"]]
        where = ".".join(loc[1:] if len(loc) > 1 and loc[0] in ("query", "path", "body",
                                                               "header", "cookie") else loc)
        parts.append(f"{where}: {error['msg']}" if where else error["msg"])
    return "; ".join(parts) or "the request is not valid"


def install_error_handling(app: FastAPI) -> None:
    """The one error shape for validation errors, HTTP errors, numbers too big for the
    database (422) and crashes (a 500 that says nothing internal); the OpenAPI schema says so."""

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = field_errors(exc)
        return JSONResponse(error_body(_sentence(errors), errors), 422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse(error_body(exc.detail), exc.status_code,
                            headers=getattr(exc, "headers", None))

    @app.exception_handler(OverflowError)
    async def out_of_range(request: Request, exc: OverflowError) -> JSONResponse:
        # SQLite integers are 64-bit: a larger id in a path or query cannot name anything.
        return JSONResponse(error_body("a number in the request is out of range"), 422)

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return JSONResponse(error_body("internal error; the server log has the details"), 500)

    generate = app.openapi

    def openapi() -> dict:
        if app.openapi_schema is None:
            schema = generate()
            components = schema.get("components", {}).get("schemas", {})
            if "HTTPValidationError" in components:
                components["HTTPValidationError"] = {
                    "title": "HTTPValidationError", "type": "object",
                    "required": ["detail", "errors"],
                    "properties": {
                        "detail": {"title": "Detail", "type": "string",
                                   "description": "One sentence saying what is wrong."},
                        "errors": {"title": "Errors", "type": "array",
                                   "items": {"$ref": "#/components/schemas/FieldError"},
                                   "description": "The fields at fault, when the request did "
                                   "not validate (else empty)."}}}
                components["FieldError"] = {
                    "title": "FieldError", "type": "object", "required": ["loc", "msg", "type"],
                    "properties": {
                        "loc": {"title": "Location", "type": "array",
                                "items": {"anyOf": [{"type": "string"}, {"type": "integer"}]}},
                        "msg": {"title": "Message", "type": "string"},
                        "type": {"title": "Error Type", "type": "string"}}}
            return schema  # generate() kept it as app.openapi_schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented way to amend it
