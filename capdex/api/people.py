"""People as the API and the CLI show and change them: one transaction per action, through the
store's rules (`capdex.store.people`); raises its `NotFound` / `PeopleError`."""

from __future__ import annotations

from typing import Any

from capdex.store import facts
from capdex.store import people as store
from capdex.store.db import Database
from capdex.store.people import NotFound, PeopleError

__all__ = [
    "NotFound",
    "PeopleError",
    "assign",
    "face",
    "faces_of",
    "forget",
    "list_people",
    "merge",
    "name",
    "person_photos",
    "regroup",
]


def list_people(db: Database) -> list[dict[str, Any]]:
    with db.read() as session:
        return [p.as_dict() for p in store.list_people(session)]


def person_photos(db: Database, person_id: int) -> dict[str, Any]:
    """{"person": {...}, "results": [{"id", "path", "caption"}]}: the photos they are in."""
    with db.read() as session:
        person = store.summary(session, person_id).as_dict()
        ids = store.photo_ids_of(session, person_id)
    known = facts.photo_facts(db, ids)
    results = [{"id": i, "path": known[i].path, "caption": known[i].caption}
               for i in ids if i in known]
    return {"person": person, "results": results}


def name(db: Database, person_id: int, new_name: str | None) -> dict[str, Any]:
    with db.session() as session:
        store.name_person(session, person_id, new_name)
        return store.summary(session, person_id).as_dict()


def merge(db: Database, person_id: int, into: int) -> dict[str, Any]:
    with db.session() as session:
        store.merge(session, person_id, into)
        return store.summary(session, into).as_dict()


def assign(db: Database, face_id: int, person_id: int | None) -> dict[str, Any]:
    with db.session() as session:
        found = store.assign_face(session, face_id, person_id)
        owner = store.person(session, person_id).name if person_id is not None else None
        return store.face_dict(found, owner)


def forget(db: Database, person_id: int) -> int:
    with db.session() as session:
        return store.forget(session, person_id)


def regroup(db: Database) -> dict[str, int]:
    from capdex.indexer.people import regroup as cluster

    with db.session() as session:
        return cluster(session)


def faces_of(db: Database, photo_id: int) -> list[dict[str, Any]]:
    with db.read() as session:
        return store.faces_in(session, [photo_id]).get(photo_id, [])


def face(db: Database, face_id: int) -> dict[str, Any]:
    """The face as JSON-ready data, with its photo id."""
    with db.read() as session:
        found = store.face(session, face_id)
        return {**store.face_dict(found, None), "photo_id": found.photo_id}
