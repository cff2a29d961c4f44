"""`capdex people ...`: list, name, merge, forget and regroup the people found in photos.

Mounted by api/cli.py (`register(app)`); the rules are the store's (`capdex.store.people`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from capdex.api import cli_common as common

if TYPE_CHECKING:
    from capdex.store.db import Database

people_app = typer.Typer(
    name="people",
    help="People found in the photos (index with --faces first): list, name, merge, forget.",
    no_args_is_help=True,
    add_completion=False,
)

PersonId = Annotated[int, typer.Argument(metavar="ID", min=1, help="A person's id (see "
                                         "`capdex people list`).")]


def _db(data_dir: Path | None) -> Database:
    return common._indexed_database(common._settings(data_dir=data_dir))


def _run(action: Callable[..., Any], *args: Any) -> Any:
    from capdex.api import people

    try:
        return action(*args)
    except people.PeopleError as exc:  # NotFound too
        common._fail(str(exc))


@people_app.command("list")
def list_people(data_dir: common.DataDir = None, as_json: common.JsonOpt = False) -> None:
    """Everyone found, most faces first (unnamed people show as "(unnamed)")."""
    from capdex.api import people

    found = people.list_people(_db(data_dir))
    if as_json:
        common._print_json({"people": found})
        return
    if not found:
        typer.echo("No people yet: index with `capdex index --faces PATH`.")
        return
    for person in found:
        typer.echo(f"{person['id']:>5}  {person['name'] or '(unnamed)'}  "
                   f"{person['faces']} face(s) in {person['photos']} photo(s)")


@people_app.command("name")
def name(person_id: PersonId,
         new_name: Annotated[str, typer.Argument(metavar="NAME", help='e.g. "Grandma".')],
         data_dir: common.DataDir = None, as_json: common.JsonOpt = False) -> None:
    """Name a person: search finds their photos by the name at once."""
    from capdex.api import people

    person = _run(people.name, _db(data_dir), person_id, new_name)
    if as_json:
        common._print_json(person)
    else:
        typer.echo(f"{person['id']} is now {person['name'] or '(unnamed)'}")


@people_app.command("merge")
def merge(person_id: PersonId,
          into: Annotated[int, typer.Argument(metavar="INTO", min=1, help="The person who keeps "
                          "the faces (and their name).")],
          data_dir: common.DataDir = None, as_json: common.JsonOpt = False) -> None:
    """Move every face of ID to INTO (the same person, found twice) and delete ID."""
    from capdex.api import people

    person = _run(people.merge, _db(data_dir), person_id, into)
    if as_json:
        common._print_json(person)
    else:
        typer.echo(f"merged {person_id} into {person['id']}: {person['faces']} face(s)")


@people_app.command("forget")
def forget(person_id: PersonId, data_dir: common.DataDir = None) -> None:
    """Delete a person and drop their faces' descriptors (privacy); they are never regrouped."""
    from capdex.api import people

    count = _run(people.forget, _db(data_dir), person_id)
    typer.echo(f"forgot person {person_id}: {count} face(s) no longer described")


@people_app.command("regroup")
def regroup(data_dir: common.DataDir = None, as_json: common.JsonOpt = False) -> None:
    """Group the faces again (DBSCAN); faces a person assigned never move."""
    from capdex.api import people

    result = _run(people.regroup, _db(data_dir))
    if as_json:
        common._print_json(result)
    else:
        typer.echo(f"{result['moved']} face(s) moved; {result['people']} people")


def register(app: typer.Typer) -> None:
    app.add_typer(people_app, name="people")
