"""API fuzzing: schemathesis generates valid and invalid requests for every operation in
/openapi.json and sends them to a real server; no answer may be a 5xx or break its own schema."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from capdex.api.app import create_app
from capdex.settings import Settings
from capdex.indexer.pipeline import Indexer
from capdex.store.db import Database
from tests.api.serving import configured, serving

pytestmark = pytest.mark.slow
#: Per operation and generation mode; with a fixed seed this is a bounded, repeatable run.
MAX_EXAMPLES = int(os.environ.get("CAPDEX_FUZZ_EXAMPLES", "40"))


@pytest.fixture
def server(settings: Settings, colour_folder: Path, embedder, colour_captioner,
           chat_stub) -> Iterator[str]:
    Indexer(settings, Database(settings.db_url), embedder=embedder).run([colour_folder])
    # Ask needs an LLM (without one it is a documented 503): the stub on loopback answers.
    app = create_app(configured(settings, photo_roots=[colour_folder], llm_endpoint=chat_stub.url))
    with serving(app) as url:
        yield url
        app.state.jobs.shutdown()


def test_no_request_gets_a_server_error_or_breaks_the_schema(server: str) -> None:
    schemathesis = pytest.importorskip("schemathesis")
    from hypothesis import HealthCheck, Phase, given, seed, settings
    from schemathesis.checks import not_a_server_error
    from schemathesis.generation.modes import GenerationMode
    from schemathesis.specs.openapi.checks import response_schema_conformance

    schema = schemathesis.openapi.from_url(f"{server}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 12, [op.label for op in operations]
    failures: list[str] = []
    client = httpx.Client(base_url=server, timeout=60)
    for operation in operations:
        takes_input = any(list(p) for p in (operation.path_parameters, operation.query,
                                            operation.headers, operation.cookies))
        takes_input = takes_input or operation.method.upper() in ("POST", "PUT", "PATCH")
        modes = [GenerationMode.POSITIVE, GenerationMode.NEGATIVE] if takes_input else [
            GenerationMode.POSITIVE]  # nothing to get wrong when an operation takes no input
        for mode in modes:

            @seed(20241122)
            @settings(max_examples=MAX_EXAMPLES, deadline=None, database=None,
                      phases=[Phase.explicit, Phase.generate],
                      suppress_health_check=list(HealthCheck))
            @given(case=operation.as_strategy(generation_mode=mode))
            def check(case) -> None:
                response = case.call(base_url=server, timeout=60)
                case.validate_response(response, checks=[not_a_server_error,
                                                          response_schema_conformance])

            try:
                check()
            except (Exception, BaseExceptionGroup) as exc:  # noqa: BLE001 - collect them all
                failures.append(f"{operation.label} ({mode.value}): {exc}")
        # Index jobs the fuzzer started must not pile up: the next operation starts afresh.
        deadline = time.monotonic() + 60
        while client.get("/api/jobs").json()["current"] is not None:
            assert time.monotonic() < deadline, "a fuzzer's index job did not finish"
            time.sleep(0.1)
    assert not failures, "\n\n".join(failures)
