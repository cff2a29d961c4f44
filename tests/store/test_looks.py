"""What photos look like (`store.looks`): rows are the truth, `looks.faiss` a cache rebuilt from
them; on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select

from capdex.settings import Settings
from capdex.store import captions, looks
from capdex.store.db import Database
from capdex.store.index_writer import IndexWriter
from capdex.store.models import File, Photo, PhotoLooks
from capdex.store.vectors import read_meta
from tests.store.test_ocr_migration import migrate

DIM = 16
MODEL = "tagger 2"


def unit(seed: int) -> np.ndarray:
    vector = np.random.default_rng(seed).normal(size=DIM).astype(np.float32)
    return vector / np.linalg.norm(vector)


def add_photo(db: Database, n: int, captioner: str = "tagger", with_file: bool = True) -> int:
    with db.session() as session:
        photo = Photo(content_hash=f"{n:064x}", size=1)
        session.add(photo)
        session.flush()
        if with_file:
            session.add(File(path=f"/p/{n}.jpg", size=1, mtime_ns=1, photo_id=photo.id))
        captions.set_machine_caption(session, photo.id, f"photo {n}", captioner, "2")
        return photo.id


@pytest.fixture
def db(db_settings: Settings) -> Database:
    return Database(db_settings.db_url)


def test_looks_are_stored_normalised_as_float16_and_replaced_under_a_new_id(db: Database) -> None:
    photo = add_photo(db, 1)
    with db.session() as session:
        looks.set_looks(session, photo, 3 * unit(1), MODEL)
    with db.read() as session:
        model, vector = looks.looks_of(session, photo)
        first = session.scalar(select(PhotoLooks.id))
    assert model == MODEL and vector.dtype == np.float32 and vector.shape == (DIM,)
    np.testing.assert_allclose(vector, unit(1), atol=2e-3)
    with db.session() as session:
        looks.set_looks(session, photo, unit(1), MODEL)  # the same: the row stays
    with db.read() as session:
        assert session.scalar(select(PhotoLooks.id)) == first
    with db.session() as session:
        looks.set_looks(session, photo, unit(2), "tagger 3")
    with db.read() as session:
        rows = session.execute(select(PhotoLooks.id, PhotoLooks.model)).all()
    assert len(rows) == 1 and rows[0][0] != first and rows[0][1] == "tagger 3"
    assert looks.newest_model(db) == "tagger 3" and looks.dim_of(db, "tagger 3") == DIM


def test_no_looks_from_a_zero_or_broken_vector(db: Database) -> None:
    photo = add_photo(db, 1)
    with db.session() as session, pytest.raises(ValueError, match="non-zero"):
        looks.set_looks(session, photo, np.zeros(DIM), MODEL)
    with db.session() as session, pytest.raises(ValueError, match="finite"):
        looks.set_looks(session, photo, np.full(DIM, np.nan), MODEL)


def test_stale_photos_are_the_captioners_photos_without_current_looks(db: Database) -> None:
    done, missing, old = add_photo(db, 1), add_photo(db, 2), add_photo(db, 3)
    other = add_photo(db, 4, captioner="blip")  # its captioner gives no looks
    add_photo(db, 5, with_file=False)  # no file: nothing to read
    with db.session() as session:
        looks.set_looks(session, done, unit(1), MODEL)
        looks.set_looks(session, old, unit(3), "tagger 1")
    with db.read() as session:
        assert looks.stale_photos(session, "tagger", MODEL) == [missing, old]
        assert looks.stale_photos(session, "blip", MODEL) == [other]


def test_the_index_is_built_from_the_rows_and_rebuilt_when_damaged(
        db: Database, db_settings: Settings) -> None:
    ids = [add_photo(db, n) for n in range(5)]
    with db.session() as session:
        for n, photo in enumerate(ids):
            looks.set_looks(session, photo, unit(n), MODEL)
    writer = IndexWriter.for_looks(db_settings, db, MODEL, DIM)
    writer.catch_up()
    path = db_settings.data_dir / looks.INDEX_FILE
    assert read_meta(path)["count"] == 5
    scores, found = writer.index.search(unit(3), 1)
    assert looks.photos_of(db, found[0].tolist()) == {int(found[0][0]): ids[3]}
    assert scores[0][0] == pytest.approx(1.0, abs=2e-3)

    with db.session() as session:  # a stage writes a row; the writer is told nothing
        looks.set_looks(session, add_photo(db, 9), unit(9), MODEL)
    writer.catch_up()
    assert read_meta(path)["count"] == 6

    path.write_bytes(b"garbage")  # damaged: a new writer rebuilds it from the rows
    fresh = IndexWriter.for_looks(db_settings, db, MODEL, DIM)
    fresh.catch_up()
    assert len(fresh.index) == 6 and read_meta(path)["count"] == 6
    path.unlink()
    IndexWriter.for_looks(db_settings, db, MODEL, DIM).catch_up()
    assert path.is_file()


def test_catch_up_does_not_open_a_current_index(db: Database, db_settings: Settings,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    with db.session() as session:
        looks.set_looks(session, add_photo(db, 1), unit(1), MODEL)
    IndexWriter.for_looks(db_settings, db, MODEL, DIM).catch_up()
    writer = IndexWriter.for_looks(db_settings, db, MODEL, DIM)
    monkeypatch.setattr("capdex.store.index_writer.open_index",
                        lambda *a, **k: pytest.fail("opened a current index"))
    writer.catch_up()
    assert not writer.opened


def test_migration_0011_down_and_up(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'x.db'}"
    db = Database(url)
    with db.session() as session:
        looks.set_looks(session, add_photo(db, 1), unit(1), MODEL)
    db.close()
    migrate(url, "0010", down=True)
    db = Database(url)  # up again: an empty table, ready for the next run's looks stage
    with db.read() as session:
        assert session.scalar(select(PhotoLooks.id)) is None
        assert looks.stale_photos(session, "tagger", MODEL) == [1]
