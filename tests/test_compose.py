"""docker-compose.yml: the services, volumes and checks the README promises (no Docker needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def compose() -> dict:
    yaml = pytest.importorskip("yaml")
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_services_and_named_volumes(compose: dict) -> None:
    assert set(compose["services"]) == {"capdex", "postgres", "ollama"}
    assert set(compose["volumes"]) == {"capdex-data", "postgres-data", "ollama-models"}
    assert "postgres-data:/var/lib/postgresql/data" in compose["services"]["postgres"]["volumes"]


def test_capdex_waits_for_a_healthy_postgres_and_uses_it(compose: dict) -> None:
    capdex, postgres = compose["services"]["capdex"], compose["services"]["postgres"]
    assert capdex["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])
    url = capdex["environment"]["CAPDEX_DATABASE_URL"]
    assert url.startswith("postgresql+psycopg://") and "@postgres:5432/" in url
    assert "ports" not in postgres  # reachable from the capdex service only
    assert "postgres" in (ROOT / "Dockerfile").read_text().split("pip install '.[")[1]


def test_photos_are_read_only_and_the_api_needs_a_key(compose: dict) -> None:
    capdex = compose["services"]["capdex"]
    photos = [v for v in capdex["volumes"] if ":/photos" in v]
    assert len(photos) == 1 and photos[0].endswith(":/photos:ro")
    assert "capdex-data:/data" in capdex["volumes"]
    assert ":?" in capdex["environment"]["CAPDEX_API_KEY"]  # compose refuses to start without
    assert all(p.startswith("127.0.0.1:") for p in capdex["ports"])


def test_ollama_is_optional_and_is_the_captioner_endpoint(compose: dict) -> None:
    ollama, capdex = compose["services"]["ollama"], compose["services"]["capdex"]
    assert ollama["profiles"] == ["ollama"]
    assert "ollama" not in capdex.get("depends_on", {})  # capdex starts without the profile
    assert "http://ollama:11434" in capdex["environment"]["CAPDEX_CAPTIONER_ENDPOINT"]
    assert "profiles" not in capdex and "profiles" not in compose["services"]["postgres"]


def test_the_ask_llm_is_passed_through_and_off_by_default(compose: dict) -> None:
    from capdex.settings import Settings

    environment = compose["services"]["capdex"]["environment"]
    for name in ("CAPDEX_LLM", "CAPDEX_LLM_ENDPOINT", "CAPDEX_LLM_MODEL", "CAPDEX_LLM_API_KEY"):
        assert environment[name] == f"${{{name}:-}}"
    # What compose passes when they are unset: blank values, which mean "no LLM".
    blank = Settings(**{name.removeprefix("CAPDEX_").lower(): "" for name in
                        ("CAPDEX_LLM", "CAPDEX_LLM_ENDPOINT", "CAPDEX_LLM_MODEL",
                         "CAPDEX_LLM_API_KEY")})
    assert blank.llm is blank.llm_endpoint is blank.llm_model is blank.llm_api_key is None
