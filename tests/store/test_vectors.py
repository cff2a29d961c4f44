"""The FAISS index is a cache of the vectors table: checked on open, repaired when they disagree."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import delete

from capdex.store.db import Database
from capdex.store.models import Caption, File, Photo, Vector
from capdex.store.vectors import (
    VectorIndex,
    file_checksum,
    index_is_current,
    open_index,
    read_meta,
)

DIM = 8
EMBEDDER = "test-embedder"


def unit(rng: np.random.Generator, n: int) -> np.ndarray:
    v = rng.normal(size=(n, DIM)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


@pytest.fixture
def db(tmp_path: Path) -> Database:
    """A database holding 20 photos, each with a file, a caption and a vector."""
    database = Database(f"sqlite:///{tmp_path / 'capdex.db'}")
    vectors = unit(np.random.default_rng(0), 20)
    with database.session() as session:
        for i, vec in enumerate(vectors):
            photo = Photo(content_hash=f"{i:064x}", size=1)
            session.add(photo)
            session.flush()
            session.add(File(path=f"/p/{i}.jpg", size=1, mtime_ns=1, photo_id=photo.id))
            caption = Caption(photo_id=photo.id, text=f"photo {i}", source="machine")
            session.add(caption)
            session.flush()
            session.add(Vector(id=100 + i, photo_id=photo.id, caption_id=caption.id,
                               embedder=EMBEDDER, dim=DIM, vector=vec.tobytes()))
    return database


def ids_of(index: VectorIndex) -> list[int]:
    return sorted(index.ids().tolist())


def test_a_new_index_is_built_from_the_database(db: Database, tmp_path: Path) -> None:
    index = open_index(tmp_path / "v.faiss", db, EMBEDDER, DIM)
    assert ids_of(index) == list(range(100, 120))
    path = tmp_path / "v.faiss"
    assert read_meta(path) == {"embedder": EMBEDDER, "dim": DIM, "count": 20, "max_id": 119,
                               "size": path.stat().st_size, "sha256": file_checksum(path)}


def test_search_finds_the_stored_vector_itself(db: Database, tmp_path: Path) -> None:
    index = open_index(tmp_path / "v.faiss", db, EMBEDDER, DIM)
    query = index.reconstruct(107)
    scores, ids = index.search(query, 3)
    assert ids[0][0] == 107 and scores[0][0] == pytest.approx(1.0, abs=1e-5)


def test_orphan_vectors_in_the_index_are_removed(db: Database, tmp_path: Path) -> None:
    path = tmp_path / "v.faiss"
    open_index(path, db, EMBEDDER, DIM)
    with db.session() as session:  # the database loses three vectors the file still has
        session.execute(delete(Vector).where(Vector.id.in_([101, 105, 119])))
    index = open_index(path, db, EMBEDDER, DIM)
    assert ids_of(index) == sorted(set(range(100, 120)) - {101, 105, 119})
    assert ids_of(open_index(path, db, EMBEDDER, DIM)) == ids_of(index)  # and the fix was saved


def test_vectors_missing_from_the_index_are_added_back(db: Database, tmp_path: Path) -> None:
    path = tmp_path / "v.faiss"
    index = open_index(path, db, EMBEDDER, DIM)
    index.remove([100, 110])
    index.save()
    repaired = open_index(path, db, EMBEDDER, DIM)
    assert ids_of(repaired) == list(range(100, 120))
    assert np.allclose(repaired.reconstruct(110), unit(np.random.default_rng(0), 20)[10], atol=1e-6)


def test_a_corrupt_index_file_is_rebuilt(db: Database, tmp_path: Path) -> None:
    path = tmp_path / "v.faiss"
    open_index(path, db, EMBEDDER, DIM)
    path.write_bytes(path.read_bytes()[:50])  # truncated, as by a crash without atomic writes
    assert ids_of(open_index(path, db, EMBEDDER, DIM)) == list(range(100, 120))


def test_a_file_damaged_in_place_same_size_is_rebuilt(db: Database, tmp_path: Path) -> None:
    """Issue 20, point 4: same size, same ids, other vectors: only a checksum can tell."""
    path = tmp_path / "v.faiss"
    open_index(path, db, EMBEDDER, DIM)
    stored = unit(np.random.default_rng(0), 20)
    data = path.read_bytes()
    assert data.count(stored[4].tobytes()) == 1
    path.write_bytes(data.replace(stored[4].tobytes(), stored[5].tobytes()))
    assert path.stat().st_size == len(data)
    index = open_index(path, db, EMBEDDER, DIM)
    assert np.allclose(index.reconstruct(104), stored[4], atol=1e-6)
    assert read_meta(path)["sha256"] == file_checksum(path)  # saved again, repaired


def test_a_file_half_zeroed_in_place_is_rebuilt_and_finds_everything(db: Database, tmp_path: Path) -> None:
    path = tmp_path / "v.faiss"
    open_index(path, db, EMBEDDER, DIM)
    data = bytearray(path.read_bytes())
    start = data.find(unit(np.random.default_rng(0), 20)[0].tobytes())
    data[start : start + 10 * DIM * 4] = bytes(10 * DIM * 4)  # the first ten vectors zeroed
    path.write_bytes(bytes(data))
    index = open_index(path, db, EMBEDDER, DIM)
    for i, vector in enumerate(unit(np.random.default_rng(0), 20)):
        assert index.search(vector, 1)[1][0][0] == 100 + i


def test_an_index_of_another_embedder_is_rebuilt(db: Database, tmp_path: Path) -> None:
    path = tmp_path / "v.faiss"
    other = VectorIndex(path, "another-model", DIM)
    other.add(np.array([1, 2, 3]), unit(np.random.default_rng(1), 3))
    other.save()
    index = open_index(path, db, EMBEDDER, DIM)
    assert ids_of(index) == list(range(100, 120))
    assert read_meta(path)["embedder"] == EMBEDDER


def test_rebuilt_vectors_equal_the_stored_ones(db: Database, tmp_path: Path) -> None:
    path = tmp_path / "v.faiss"
    open_index(path, db, EMBEDDER, DIM)
    path.unlink()
    index = open_index(path, db, EMBEDDER, DIM)
    stored = unit(np.random.default_rng(0), 20)
    assert np.allclose(index.reconstruct(104), stored[4], atol=1e-6)


def test_dimension_is_read_from_the_file_without_asking_the_model(db: Database, tmp_path: Path) -> None:
    path = tmp_path / "v.faiss"
    open_index(path, db, EMBEDDER, DIM)

    def no_model() -> int:
        raise AssertionError("the model should not be loaded")

    assert len(open_index(path, db, EMBEDDER, no_model)) == 20


def add_photo_vector(db: Database, vector: np.ndarray) -> int:
    """Commit one more photo with a file, caption and vector (as another process would)."""
    with db.session() as session:
        photo = Photo(content_hash=f"{np.random.default_rng().integers(1 << 62):064x}", size=1)
        session.add(photo)
        session.flush()
        session.add(File(path=f"/p/new-{photo.id}.jpg", size=1, mtime_ns=1, photo_id=photo.id))
        caption = Caption(photo_id=photo.id, text="new", source="machine")
        session.add(caption)
        session.flush()
        row = Vector(photo_id=photo.id, caption_id=caption.id, embedder=EMBEDDER, dim=DIM,
                     vector=vector.tobytes())
        session.add(row)
        session.flush()
        return row.id


def test_no_writer_s_save_drops_another_writer_s_vectors(db: Database, tmp_path: Path) -> None:
    """Two processes (say an index run and the server storing a human caption) each hold the
    index in memory, add their own vectors and save: the file ends up with both."""
    path = tmp_path / "v.faiss"
    indexer, server = open_index(path, db, EMBEDDER, DIM), open_index(path, db, EMBEDDER, DIM)
    fresh = unit(np.random.default_rng(5), 2)
    mine = add_photo_vector(db, fresh[0])
    indexer.add(np.array([mine]), fresh[:1])
    theirs = add_photo_vector(db, fresh[1])
    server.add(np.array([theirs]), fresh[1:])
    with db.session() as session:  # and the server replaced a vector the indexer still holds
        session.execute(delete(Vector).where(Vector.id == 100))
    server.remove([100])
    server.save(db)
    indexer.save(db)  # last writer: must keep the server's vector and drop the deleted one
    on_disk = VectorIndex(path, EMBEDDER, DIM)
    assert on_disk.load()
    expected = sorted(set(range(101, 120)) | {mine, theirs})
    assert ids_of(on_disk) == expected
    assert np.allclose(on_disk.reconstruct(theirs), fresh[1], atol=1e-6)


def test_a_reader_notices_every_save(db: Database, tmp_path: Path) -> None:
    path = tmp_path / "v.faiss"
    reader, writer = open_index(path, db, EMBEDDER, DIM), open_index(path, db, EMBEDDER, DIM)
    assert not reader.changed_on_disk()
    writer.save()  # same size and, on a coarse clock, the same mtime: the inode still differs
    assert reader.changed_on_disk()


# -- the cheap check a run that changed no vector makes instead of opening the index ------------
def test_a_saved_index_is_current_until_the_database_changes(db: Database, tmp_path: Path) -> None:
    path = tmp_path / "v.faiss"
    assert not index_is_current(path, db, EMBEDDER)  # no file yet
    open_index(path, db, EMBEDDER, DIM)
    assert index_is_current(path, db, EMBEDDER)
    assert not index_is_current(path, db, "another-model")
    with db.session() as session:  # a vector went, as by a crash after a commit
        session.execute(delete(Vector).where(Vector.id == 105))
    assert not index_is_current(path, db, EMBEDDER)
    open_index(path, db, EMBEDDER, DIM)
    assert index_is_current(path, db, EMBEDDER)
    add_photo_vector(db, unit(np.random.default_rng(3), 1)[0])
    assert not index_is_current(path, db, EMBEDDER)


def test_removing_the_newest_vectors_and_adding_as_many_is_noticed(db: Database, tmp_path: Path) -> None:
    """Same count, and ids are never reused: the new highest id tells the sets apart."""
    path = tmp_path / "v.faiss"
    open_index(path, db, EMBEDDER, DIM)
    with db.session() as session:
        session.execute(delete(Vector).where(Vector.id.in_([118, 119])))
    fresh = unit(np.random.default_rng(4), 2)
    new_ids = [add_photo_vector(db, v) for v in fresh]
    assert min(new_ids) > 119
    assert not index_is_current(path, db, EMBEDDER)


def test_a_truncated_file_or_a_file_without_its_metadata_is_not_current(db: Database, tmp_path: Path) -> None:
    path = tmp_path / "v.faiss"
    open_index(path, db, EMBEDDER, DIM)
    path.write_bytes(path.read_bytes()[:50])
    assert not index_is_current(path, db, EMBEDDER)
    open_index(path, db, EMBEDDER, DIM)
    path.with_suffix(".faiss.json").unlink()
    assert not index_is_current(path, db, EMBEDDER)


def test_a_save_without_the_database_never_counts_as_current(db: Database, tmp_path: Path) -> None:
    """Without a sync the file holds what one process had in memory, not necessarily what the
    database holds; only a save after `sync_with` records what the check compares."""
    path = tmp_path / "v.faiss"
    index = open_index(path, db, EMBEDDER, DIM)
    index.save()
    assert "max_id" not in (read_meta(path) or {})
    assert not index_is_current(path, db, EMBEDDER)
    open_index(path, db, EMBEDDER, DIM)  # (as an older capdex's file) stamped by the next open
    assert index_is_current(path, db, EMBEDDER)


def test_an_index_due_to_change_kind_is_not_current(db: Database, tmp_path: Path) -> None:
    path = tmp_path / "v.faiss"
    open_index(path, db, EMBEDDER, DIM)  # exact: no limit given
    assert index_is_current(path, db, EMBEDDER, exact_max=None)
    assert not index_is_current(path, db, EMBEDDER, exact_max=10)  # 20 vectors: IVF wanted
