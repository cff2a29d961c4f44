"""What every `capdex` command shares: common options and small helpers (settings, database,
errors, JSON). Kept apart from `cli.py` so command modules (`cli_spark.py`, ...) import this,
never `cli.py`, which imports them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

if TYPE_CHECKING:  # imported where used: `capdex --help` stays fast
    from capdex.settings import Settings
    from capdex.store.db import Database

DataDir = Annotated[
    Path | None,
    typer.Option("--data-dir", metavar="DIR", envvar="CAPDEX_DATA_DIR",
                 show_default="$XDG_DATA_HOME/capdex or ~/.local/share/capdex",
                 help="Where the index is kept (database, vectors, thumbnails, models)."),
]
CaptionerOpt = Annotated[str | None, typer.Option("--captioner", "-c", metavar="NAME",
                         help="Captioning model (`capdex models list`); default: tagger.")]
ModelPathOpt = Annotated[Path | None, typer.Option("--model-path", metavar="DIR",
                         help="Load the captioner's model files from DIR.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]
EndpointOpt = Annotated[str | None, typer.Option("--endpoint", metavar="URL",
                        help="Base URL of an HTTP captioner (ollama, openai, anthropic).")]
ModelOpt = Annotated[str | None, typer.Option("--model", metavar="NAME",
                     help="Model of an HTTP captioner, or a hub id for hf-vlm.")]


def _settings(**overrides: Any) -> Settings:
    """Settings from the environment, with command-line values (those not None) on top."""
    from pydantic import ValidationError

    from capdex.settings import Settings

    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        _fail(f"invalid setting: {exc.errors()[0]['loc'][0]}: {exc.errors()[0]['msg']}")


def _database(settings: Settings) -> Database:
    from capdex.store.db import Database, StoreError

    try:
        return Database(settings.db_url)
    except StoreError as exc:
        _fail(str(exc))


class _NoIndex(Exception):
    """The data dir holds no index, or an empty one; the message says where and what to do."""


def _indexed_database(settings: Settings, photos: bool = True) -> Database:
    """The database of an existing index (holding photos, unless `photos` is False); exits 1
    saying so when there is none.

    A command that reads the index must not create one: a search in the wrong data dir would
    otherwise leave an empty database behind and answer "No matching photos.".
    """
    try:
        return _open_indexed(settings, photos)
    except _NoIndex as exc:
        _fail(str(exc), code=1)


def _open_indexed(settings: Settings, photos: bool = True) -> Database:
    from sqlalchemy.engine import make_url

    url = make_url(settings.db_url)
    where = f"in {settings.data_dir}" if settings.database_url is None else f"at {url!r}"
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:") \
            and not Path(url.database).is_file():
        raise _NoIndex(f"no index {where} yet (0 photos)" + _how_to_index(settings))
    db = _database(settings)
    if not photos:
        return db
    from capdex.store import repo

    if not repo.file_count(db):
        raise _NoIndex(f"the index {where} holds no photos yet" + _how_to_index(settings))
    return db


def _how_to_index(settings: Settings) -> str:
    """What to run instead: index a folder, or point at the data dir that `make run` filled."""
    hint = ". Index a folder first: capdex index ~/Pictures"
    local = Path.cwd() / ".capdex-data"
    if (local / "capdex.db").is_file() and local.resolve() != settings.data_dir.resolve():
        hint += (f"\n`make run` indexed into {local}; to search it:\n"
                 f"    export CAPDEX_DATA_DIR={local}")
    else:
        hint += " (or pass --data-dir, or set CAPDEX_DATA_DIR, where you indexed before)"
    return hint


#: Photo ids are 64-bit database integers: a larger one is a usage error, not a traceback.
MAX_ID = 2**63 - 1


def _fail(message: str, code: int = 2) -> NoReturn:
    typer.echo(f"capdex: error: {message}", err=True)
    raise typer.Exit(code)


def _print_json(data: object) -> None:
    typer.echo(json.dumps(data, ensure_ascii=False, default=str))


def _check_captioner(settings: Settings) -> None:
    from capdex.captioners import CaptionerError, registry

    try:
        registry.captioner_class(settings.captioner)
    except (CaptionerError, ImportError) as exc:
        _fail(str(exc))
