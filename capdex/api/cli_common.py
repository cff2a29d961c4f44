"""What every `capdex` command shares: common options and small helpers (settings, database,
errors, JSON). Kept apart from `cli.py` so command modules (`cli_spark.py`, ...) import this,
never `cli.py`, which imports them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

DataDir = Annotated[
    Path | None,
    typer.Option("--data-dir", envvar="CAPDEX_DATA_DIR", help="Where capdex keeps its database, "
                 "index, thumbnails and models (default: $XDG_DATA_HOME/capdex)."),
]
CaptionerOpt = Annotated[str | None, typer.Option("--captioner", "-c", help="Captioning model "
                         "(see `capdex models list`); default: tagger.")]
ModelPathOpt = Annotated[Path | None, typer.Option("--model-path", help="Use the captioner's model "
                         "files from this folder instead of the data dir.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]
EndpointOpt = Annotated[str | None, typer.Option("--endpoint", help="Base URL for HTTP "
                        "captioners (ollama, openai, anthropic).")]
ModelOpt = Annotated[str | None, typer.Option("--model", help="Model name for HTTP captioners, "
                     "or a hub id for hf-vlm.")]


def _settings(**overrides: Any):  # type: ignore[no-untyped-def]
    """Settings from the environment, with command-line values (those not None) on top."""
    from pydantic import ValidationError

    from capdex.settings import Settings

    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        _fail(f"invalid setting: {exc.errors()[0]['loc'][0]}: {exc.errors()[0]['msg']}")


def _database(settings):  # type: ignore[no-untyped-def]
    from capdex.store.db import Database, StoreError

    try:
        return Database(settings.db_url)
    except StoreError as exc:
        _fail(str(exc))


def _fail(message: str, code: int = 2) -> None:
    typer.echo(f"capdex: error: {message}", err=True)
    raise typer.Exit(code)


def _print_json(data: object) -> None:
    typer.echo(json.dumps(data, ensure_ascii=False, default=str))


def _check_captioner(settings) -> None:  # type: ignore[no-untyped-def]
    from capdex.captioners import CaptionerError, registry

    try:
        registry.captioner_class(settings.captioner)
    except (CaptionerError, ImportError) as exc:
        _fail(str(exc))
