"""How errors look to clients: always `{"detail": ...}` with a reason, never a stack trace.

FastAPI documents 422 bodies as a list of field errors, but routes also answer 422 with a
sentence (e.g. "the query is blank"); the schema is widened to say so, so it stays true.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

log = logging.getLogger(__name__)


def install_error_handling(app: FastAPI) -> None:
    """A JSON 500 that says nothing internal, 422 for numbers too big for the database, and a
    422 schema that admits sentence details."""

    @app.exception_handler(OverflowError)
    async def out_of_range(request: Request, exc: OverflowError) -> JSONResponse:
        # SQLite integers are 64-bit: a larger id in a path or query cannot name anything.
        return JSONResponse({"detail": "a number in the request is out of range"}, 422)

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return JSONResponse({"detail": "internal error; the server log has the details"}, 500)

    generate = app.openapi

    def openapi() -> dict:
        if app.openapi_schema is None:
            schema = generate()
            errors = schema.get("components", {}).get("schemas", {}).get("HTTPValidationError")
            if errors is not None:
                detail = errors["properties"]["detail"]
                errors["properties"]["detail"] = {
                    "title": "Detail", "anyOf": [detail, {"type": "string"}],
                    "description": "Field errors, or one sentence saying what is wrong."}
            return schema  # generate() kept it as app.openapi_schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented way to amend it
