"""Unchanged re-runs: they neither open the vector index nor read its ids, and what a crash or
another writer left out of date is still repaired (by the run, or by the next search)."""

from __future__ import annotations

from pathlib import Path

import faiss
import pytest
from sqlalchemy import select

from capdex.embedder import Embedder
from capdex.settings import Settings
from capdex.indexer.pipeline import Indexer
from capdex.search.engine import SearchEngine
from capdex.store import repo
from capdex.store.db import Database
from capdex.store.models import File, Vector
from capdex.store.vectors import VectorIndex, index_is_current
from tests.conftest import write_colour_photo


@pytest.fixture
def db(settings: Settings) -> Database:
    return Database(settings.db_url)


@pytest.fixture
def run(settings: Settings, db: Database, embedder: Embedder, colour_captioner):
    def _run(*roots: Path):
        return Indexer(settings, db, embedder=embedder).run(roots)

    return _run


def file_ids(settings: Settings) -> list[int]:
    """The ids the saved index file holds."""
    index = faiss.read_index(str(settings.index_path))  # kept alive while its id map is read
    return sorted(faiss.vector_to_array(index.id_map).tolist())


def stored_ids(db: Database, embedder: Embedder) -> list[int]:
    return repo.vector_ids(db, embedder.name).tolist()


def test_an_unchanged_re_run_does_not_open_the_vector_index(run, colour_folder, settings, db, monkeypatch) -> None:
    run(colour_folder)
    before = settings.index_path.stat()

    def must_not(*args, **kwargs):
        raise AssertionError("an unchanged re-run opened the vector index")

    monkeypatch.setattr(VectorIndex, "load", must_not)
    monkeypatch.setattr(repo, "vector_ids", must_not)
    summary = run(colour_folder)
    assert summary.unchanged == 6 and not summary.did_something
    after = settings.index_path.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


def test_a_save_lost_in_a_crash_is_made_good_by_the_next_unchanged_run(run, colour_folder, settings, db, embedder) -> None:
    """The run that removed a photo committed, then died before saving the index: the old file
    (and its metadata) still hold the removed vector. Nothing changes on disk after that."""
    run(colour_folder)
    saved = {p: p.read_bytes() for p in (settings.index_path,
                                         settings.index_path.with_suffix(".faiss.json"))}
    (colour_folder / "red.jpg").unlink()
    assert run(colour_folder).removed == 1
    for path, data in saved.items():  # as if that run's save never happened
        path.write_bytes(data)
    assert not index_is_current(settings.index_path, db, embedder.name)
    summary = run(colour_folder)
    assert not summary.did_something
    assert file_ids(settings) == stored_ids(db, embedder) and len(file_ids(settings)) == 5


def test_vectors_another_writer_committed_are_added_by_the_next_unchanged_run(run, colour_folder, settings, db, embedder) -> None:
    run(colour_folder)
    with db.session() as session:  # a photo re-embedded elsewhere; its process died before saving
        row = session.scalars(select(Vector)).first()
        assert row is not None
        again = Vector(photo_id=row.photo_id, caption_id=row.caption_id, embedder=row.embedder,
                       dim=row.dim, vector=row.vector)
        session.delete(row)
        session.flush()
        session.add(again)
    assert run(colour_folder).unchanged == 6
    assert file_ids(settings) == stored_ids(db, embedder)


def test_a_truncated_index_file_is_rebuilt_by_an_unchanged_run(run, colour_folder, settings, db, embedder) -> None:
    run(colour_folder)
    settings.index_path.write_bytes(settings.index_path.read_bytes()[:100])
    run(colour_folder)
    assert file_ids(settings) == stored_ids(db, embedder) and len(file_ids(settings)) == 6


def test_an_index_file_damaged_in_place_is_repaired_by_search_and_by_the_next_run_that_changes_vectors(run, colour_folder, settings, db, embedder) -> None:
    """Same size, so the unchanged run's cheap check cannot see it (documented in
    `store.vectors.index_is_current`): the next open repairs it, whoever opens it."""
    run(colour_folder)
    size = settings.index_path.stat().st_size
    settings.index_path.write_bytes(b"\0" * size)
    assert run(colour_folder).unchanged == 6
    assert settings.index_path.read_bytes() == b"\0" * size  # left alone by the unchanged run
    hits = SearchEngine(settings, db, embedder).search("red", k=10, mode="semantic", min_score=-1.0)
    assert len(hits.results) == 6
    assert file_ids(settings) == stored_ids(db, embedder)  # the search saved the repair

    settings.index_path.write_bytes(b"\0" * settings.index_path.stat().st_size)
    write_colour_photo(colour_folder / "more" / "new.jpg", "red", seed=99)
    assert run(colour_folder).new == 1
    assert file_ids(settings) == stored_ids(db, embedder) and len(file_ids(settings)) == 7


def test_a_missing_index_file_is_rebuilt_by_an_unchanged_run(run, colour_folder, settings, db, embedder) -> None:
    run(colour_folder)
    settings.index_path.unlink()
    run(colour_folder)
    assert file_ids(settings) == stored_ids(db, embedder)


def test_a_folder_differing_only_in_case_is_another_folder(run, tmp_path, settings, db) -> None:
    """SQLite's LIKE ignores ASCII case: the stored files of /x/photos were taken for files
    under /x/Photos, and a run over /x/Photos removed them as deleted."""
    lower, upper = tmp_path / "lib" / "photos", tmp_path / "lib" / "Photos"
    write_colour_photo(lower / "a.jpg", "red", seed=1)
    write_colour_photo(upper / "b.jpg", "blue", seed=2)
    run(lower)
    summary = run(upper)
    assert summary.new == 1 and summary.removed == 0
    with db.read() as session:
        assert sorted(Path(p).name for p in session.scalars(select(File.path))) == ["a.jpg", "b.jpg"]
    (upper / "b.jpg").unlink()
    assert run(upper).removed == 1
    with db.read() as session:
        assert [Path(p).name for p in session.scalars(select(File.path))] == ["a.jpg"]
