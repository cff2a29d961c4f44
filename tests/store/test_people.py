"""The store's rules for faces and people (migration 0009), on SQLite and PostgreSQL, without
models: descriptors are made up, so these run where dlib is not installed."""

from __future__ import annotations

import pytest
from sqlalchemy import inspect, select

from capdex.store import people
from capdex.store.db import Database, make_engine
from capdex.store.keyword import keyword_index
from capdex.store.models import HUMAN, MACHINE, Face
from tests.store.test_keyword import add_photo, found
from tests.store.test_ocr_migration import migrate


@pytest.fixture
def db(database_url: str) -> Database:
    return Database(database_url)


def vector(seed: int) -> list[float]:
    import numpy as np

    values = np.random.default_rng(seed).normal(size=128)
    return (values / np.linalg.norm(values) * 0.3).tolist()


def face(box: tuple[float, float, float, float], seed: int) -> dict[str, object]:
    return {"box": list(box), "score": 1.5, "descriptor": vector(seed)}


def test_names_are_words_search_finds_and_forgetting_drops_descriptors(db: Database) -> None:
    one = add_photo(db, "a man in a suit", "/p/a.jpg")
    two = add_photo(db, "two men in suits", "/p/b.jpg")
    with db.session() as session:
        [a] = people.replace_faces(session, one, [face((0.1, 0.1, 0.2, 0.2), 1)], "v1")
        b1, b2 = people.replace_faces(session, two, [face((0.1, 0.1, 0.2, 0.2), 1),
                                                     face((0.5, 0.1, 0.2, 0.2), 2)], "v1")
        person = people.new_person(session)
        other = people.new_person(session)
        people.machine_assign(session, [a, b1], person.id)
        people.machine_assign(session, [b2], other.id)
        people.refresh_words(session, [one, two])
    assert found(db, "two people") == [two, one]  # one person is "people" too, ranked after
    assert found(db, "person") == [one] and sorted(found(db, "people")) == [one, two]
    with db.session() as session:
        people.name_person(session, person.id, "  Barack   Obama ")
    assert sorted(found(db, "obama")) == [one, two]
    assert keyword_index(db).explain("obama", [one])[one].fields == ("words",)
    with db.read() as session:
        assert people.resolve(session, "barack obama") == [person.id]
        assert people.resolve(session, "obama") == [person.id]  # a part of the name
        assert people.resolve(session, str(other.id)) == [other.id]
        assert set(session.scalars(people.person_photos("Obama"))) == {one, two}
        listed = {p.id: (p.name, p.faces, p.photos) for p in people.list_people(session)}
        assert listed == {person.id: ("Barack Obama", 2, 2), other.id: (None, 1, 1)}
    with db.session() as session:
        assert people.forget(session, person.id) == 2
    assert found(db, "obama") == []
    with db.read() as session:
        rows = session.scalars(select(Face).order_by(Face.id)).all()
        assert [(f.person_id, f.assigned_by, f.descriptor is None) for f in rows] == [
            (None, HUMAN, True), (None, HUMAN, True), (other.id, MACHINE, False)]
    with db.session() as session:
        with pytest.raises(people.NotFound):
            people.name_person(session, person.id, "x")
        with pytest.raises(people.PeopleError):
            people.merge(session, other.id, other.id)


def test_migration_0009_down_and_up(database_url: str) -> None:
    migrate(database_url, "head")
    migrate(database_url, "0008", down=True)
    engine = make_engine(database_url)
    assert not {"faces", "people", "face_scans"} & set(inspect(engine).get_table_names())
    engine.dispose()
    migrate(database_url, "head")
    engine = make_engine(database_url)
    assert {"faces", "people", "face_scans"} <= set(inspect(engine).get_table_names())
    engine.dispose()
