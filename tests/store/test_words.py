"""Words stages add to photos (migration 0008): keyword search finds them on SQLite and
PostgreSQL, embedded words go into the photo's vector text, and a change drops the vector."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from capdex.indexer.embed import embedding_texts
from capdex.store.db import Database
from capdex.store.keyword import keyword_index
from capdex.store.models import Caption, Vector
from capdex.store.words import embedded_words, forget_kind, set_words, words_of
from tests.store.test_keyword import add_photo, found
from tests.store.test_ocr_migration import migrate


@pytest.fixture
def db(database_url: str) -> Database:
    return Database(database_url)


def add_vector(db: Database, photo_id: int) -> int:
    with db.session() as session:
        caption_id = session.scalar(select(Caption.id).where(Caption.photo_id == photo_id))
        row = Vector.of(photo_id, caption_id, "test", [1.0, 0.0])
        session.add(row)
        session.flush()
        return row.id


def test_words_are_found_by_keyword_search_and_follow_changes(db: Database) -> None:
    cat = add_photo(db, "a tabby cat", "/p/IMG_0001.jpg")
    dog = add_photo(db, "a dog", "/p/IMG_0002.jpg")
    with db.session() as session:
        set_words(session, cat, "place", "Lisbon Lisbon Portugal")
        set_words(session, cat, "time", "2019 July summer evening")
        set_words(session, dog, "place", "New York United States")
    assert found(db, "lisbon") == [cat]
    assert found(db, "portugal summer") == [cat]
    assert found(db, "new york") == [dog]
    assert keyword_index(db).explain("lisbon", [cat])[cat].fields == ("words",)
    with db.session() as session:
        set_words(session, cat, "place", "Tokyo Japan")
        set_words(session, dog, "place", "")
    assert found(db, "lisbon") == [] and found(db, "tokyo") == [cat]
    assert found(db, "york") == []
    with db.session() as session:
        assert words_of(session, [cat, dog]) == {cat: {"place": "Tokyo Japan",
                                                       "time": "2019 July summer evening"}}
        assert forget_kind(session, "time") == []
    assert found(db, "summer") == [] and found(db, "tokyo") == [cat]


def test_embedded_words_join_the_vector_text_and_a_change_drops_the_vector(db: Database) -> None:
    photo = add_photo(db, "a suit", "/p/group.jpg")
    vector = add_vector(db, photo)
    with db.session() as session:
        assert set_words(session, photo, "time", "2020 May") == []  # not embedded: vector stays
        assert set_words(session, photo, "people", "two people", embedded=True) == [vector]
    with db.read() as session:
        assert embedded_words(session, [photo]) == {photo: "two people"}
        assert embedding_texts(session, [photo], 40)[0][3] == "a suit, two people"
    vector = add_vector(db, photo)
    with db.session() as session:
        assert set_words(session, photo, "people", "two  people", embedded=True) == []  # same
        assert set_words(session, photo, "people", "a group of people", embedded=True) == [vector]


def test_migration_0008_down_and_up_keeps_keyword_search(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'x.db'}"
    db = Database(url)
    photo = add_photo(db, "a beach", "/p/beach.jpg")
    with db.session() as session:
        set_words(session, photo, "place", "Lisbon")
    db.close()
    migrate(url, "0007", down=True)
    db = Database(url)  # up again: words are gone with their table, the caption is searchable
    assert found(db, "beach") == [photo] and found(db, "lisbon") == []
    with db.session() as session:
        set_words(session, photo, "place", "Porto")
    assert found(db, "porto") == [photo]
