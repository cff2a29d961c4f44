"""Index runs end to end with a fake colour captioner and the real embedder."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from sqlalchemy import func, select

from capdex.embedder import Embedder
from capdex.settings import Settings
from capdex.indexer.pipeline import Indexer, IndexerError
from capdex.search.engine import SearchEngine
from capdex.store.db import Database
from capdex.store.models import Caption, IndexingError, Photo
from capdex.store.vectors import file_checksum, read_meta
from tests.conftest import ColourCaptioner, write_colour_photo


@pytest.fixture
def db(settings: Settings) -> Database:
    return Database(settings.db_url)


@pytest.fixture
def run(settings: Settings, db: Database, embedder: Embedder, colour_captioner):
    def _run(*roots: Path, **kwargs):
        return Indexer(settings, db, embedder=embedder, **kwargs).run(roots)

    return _run


def consistent_counts(settings: Settings, db: Database, embedder: Embedder) -> dict[str, int]:
    from capdex.api.status import status

    data = status(settings, db)
    assert data["vectors"] == data["photos"], data
    with db.read() as session:
        assert session.scalar(select(func.count(Caption.id))) >= data["photos"]
    return data


def top_path(settings: Settings, db: Database, embedder: Embedder, query: str) -> str:
    results = SearchEngine(settings, db, embedder).search(query, k=1)
    return Path(results.results[0].path).name


def test_first_run_captions_everything_and_search_finds_it(run, colour_folder, settings, db, embedder):
    summary = run(colour_folder)
    assert summary.new == 6 and summary.failed == 0
    assert ColourCaptioner.captioned() == 6
    assert consistent_counts(settings, db, embedder)["photos"] == 6
    assert top_path(settings, db, embedder, "something red") == "red.jpg"
    assert top_path(settings, db, embedder, "a yellow image") == "yellow.jpg"


def test_second_run_does_no_captioning(run, colour_folder):
    run(colour_folder)
    ColourCaptioner.calls = []
    summary = run(colour_folder)
    assert ColourCaptioner.captioned() == 0
    assert summary.unchanged == 6 and summary.new == 0


def test_touching_a_file_rehashes_but_does_not_caption(run, colour_folder):
    run(colour_folder)
    ColourCaptioner.calls = []
    os.utime(colour_folder / "red.jpg", ns=(1, 2_000_000_000))
    summary = run(colour_folder)
    assert ColourCaptioner.captioned() == 0 and summary.new == 0 and summary.unchanged == 5


def test_copy_adds_a_file_but_no_photo_and_no_caption(run, colour_folder, settings, db, embedder):
    run(colour_folder)
    ColourCaptioner.calls = []
    shutil.copy(colour_folder / "red.jpg", colour_folder / "red-copy.jpg")
    summary = run(colour_folder)
    assert summary.copied == 1 and ColourCaptioner.captioned() == 0
    counts = consistent_counts(settings, db, embedder)
    assert (counts["photos"], counts["files"]) == (6, 7)


def test_moved_file_is_not_captioned_again(run, colour_folder, settings, db, embedder):
    run(colour_folder)
    ColourCaptioner.calls = []
    (colour_folder / "elsewhere").mkdir()
    shutil.move(colour_folder / "red.jpg", colour_folder / "elsewhere" / "renamed.jpg")
    summary = run(colour_folder)
    assert summary.moved == 1 and summary.removed == 0 and ColourCaptioner.captioned() == 0
    assert top_path(settings, db, embedder, "red") == "renamed.jpg"
    assert consistent_counts(settings, db, embedder)["files"] == 6


def test_deleted_file_disappears_from_results(run, colour_folder, settings, db, embedder):
    run(colour_folder)
    (colour_folder / "red.jpg").unlink()
    summary = run(colour_folder)
    assert summary.removed == 1
    names = [Path(h.path).name for h in SearchEngine(settings, db, embedder).search("red", k=10).results]
    assert "red.jpg" not in names
    assert consistent_counts(settings, db, embedder)["photos"] == 5


def test_deleted_then_restored_file_is_not_captioned_again(run, colour_folder, tmp_path):
    run(colour_folder)
    shutil.move(colour_folder / "red.jpg", tmp_path / "red.jpg")
    run(colour_folder)
    ColourCaptioner.calls = []
    shutil.move(tmp_path / "red.jpg", colour_folder / "red.jpg")
    summary = run(colour_folder)
    assert ColourCaptioner.captioned() == 0 and summary.copied == 1 and summary.reembedded == 1


def test_edited_file_is_captioned_anew(run, colour_folder, settings, db, embedder):
    run(colour_folder)
    ColourCaptioner.calls = []
    write_colour_photo(colour_folder / "red.jpg", "blue", seed=99)
    summary = run(colour_folder)
    assert summary.changed == 1 and summary.new == 1 and ColourCaptioner.captioned() == 1
    counts = consistent_counts(settings, db, embedder)
    assert (counts["photos"], counts["files"]) == (6, 6)
    results = SearchEngine(settings, db, embedder).search("blue", k=2).results
    assert {Path(h.path).name for h in results} == {"red.jpg", "blue.jpg"}


def test_identical_new_files_are_captioned_once(run, tmp_path, settings, db, embedder):
    root = tmp_path / "dups"
    write_colour_photo(root / "a.jpg", "green", seed=3)
    shutil.copy(root / "a.jpg", root / "b.jpg")
    summary = run(root)
    assert summary.new == 1 and ColourCaptioner.captioned() == 1
    counts = consistent_counts(settings, db, embedder)
    assert (counts["photos"], counts["files"]) == (1, 2)


def test_broken_files_are_recorded_and_skipped_then_retried_when_fixed(run, colour_folder, db):
    bad = colour_folder / "broken.jpg"
    bad.write_bytes(b"this is not a jpeg")
    summary = run(colour_folder)
    assert summary.new == 6 and summary.failed == 1
    with db.read() as session:
        [error] = session.scalars(select(IndexingError)).all()
    assert error.path == str(bad) and "not a recognised image" in error.reason
    ColourCaptioner.calls = []
    assert run(colour_folder).failed == 1 and ColourCaptioner.captioned() == 0  # not retried
    write_colour_photo(bad, "white", seed=42)
    summary = run(colour_folder)
    assert summary.new == 1 and summary.failed == 0
    with db.read() as session:
        assert session.scalar(select(func.count(IndexingError.id))) == 0


def test_a_captioner_that_fails_on_one_image_loses_only_that_image(run, colour_folder, db, monkeypatch):
    original = ColourCaptioner.caption_batch

    def picky(self, images):
        if any(img.getpixel((0, 0))[2] > 150 and img.getpixel((0, 0))[0] < 100 for img in images):
            raise RuntimeError("model cannot handle blue")
        return original(self, images)

    monkeypatch.setattr(ColourCaptioner, "caption_batch", picky)
    summary = run(colour_folder)
    assert summary.new == 5 and summary.failed == 1
    assert "model cannot handle blue" in summary.failures[0][1]


def test_recaption_redoes_only_other_captioners_work(run, colour_folder, db, monkeypatch):
    run(colour_folder)
    ColourCaptioner.calls = []
    run(colour_folder, recaption=True)
    assert ColourCaptioner.captioned() == 0  # same captioner and version: nothing stale
    monkeypatch.setattr(ColourCaptioner, "version", "2")
    summary = run(colour_folder, recaption=True)
    assert summary.recaptioned == 6 and ColourCaptioner.captioned() == 6
    with db.read() as session:
        versions = set(session.scalars(select(Caption.captioner_version)))
    assert versions == {"2"}


def test_missing_root_is_an_error_and_changes_nothing(run, colour_folder, tmp_path, db):
    run(colour_folder)
    with pytest.raises(IndexerError, match="no such file"):
        run(tmp_path / "unmounted-nas")
    with db.read() as session:
        assert session.scalar(select(func.count(Photo.id))) == 6


def test_a_second_indexer_on_the_same_data_dir_is_refused(run, colour_folder, settings):
    from filelock import FileLock

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    with FileLock(str(settings.data_dir / "index.lock")):
        with pytest.raises(IndexerError, match="another capdex index run"):
            run(colour_folder)


def test_thumbnails_are_written_during_indexing(run, colour_folder, settings, db):
    from capdex.indexer.thumbnails import thumbnail_path

    run(colour_folder)
    with db.read() as session:
        hashes = session.scalars(select(Photo.content_hash)).all()
    assert all(thumbnail_path(settings, h).is_file() for h in hashes)


def test_index_file_records_its_embedder(run, colour_folder, settings, embedder):
    run(colour_folder)
    meta = read_meta(settings.index_path)
    assert meta is not None and meta["max_id"] is not None
    assert meta == {"embedder": embedder.name, "dim": 384, "count": 6, "max_id": meta["max_id"],
                    "size": settings.index_path.stat().st_size,
                    "sha256": file_checksum(settings.index_path)}


def test_a_captioner_that_cannot_run_stops_the_run_without_recording_photos_as_broken(run, colour_folder, db, monkeypatch):
    from capdex.captioners import CaptionerError

    def unavailable(self, images):
        raise CaptionerError("endpoint http://127.0.0.1:9 refused the connection")

    monkeypatch.setattr(ColourCaptioner, "caption_batch", unavailable)
    with pytest.raises(CaptionerError, match="refused"):
        run(colour_folder)
    with db.read() as session:
        assert session.scalar(select(func.count(IndexingError.id))) == 0
