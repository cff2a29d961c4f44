"""A run over a folder of hostile and odd files: it never stops, and every file is accounted for."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import select
from typer.testing import CliRunner

from capdex.api.cli import app as cli
from capdex.paths import to_store
from capdex.settings import Settings
from capdex.captioners import Captioner, registry
from capdex.indexer.pipeline import Indexer
from capdex.store.db import Database
from capdex.store.models import Caption, File, IndexingError, Photo
from tests.odd_files import layout, two_tone, write_hostile, write_odd_but_valid


class LayoutCaptioner(Captioner):
    """Says which colour is above which, so a sideways picture gets a different caption."""

    name = "test-layout"
    batch_size = 4
    input_size = 64

    def caption_batch(self, images: Sequence[Image.Image]) -> list[str]:
        return [layout(image) for image in images]


@pytest.fixture
def library(tmp_path: Path) -> tuple[Path, dict[str, str], dict[str, str]]:
    root = tmp_path / "photos"
    odd = write_odd_but_valid(root / "odd")
    hostile = write_hostile(root / "hostile")
    return root, odd, hostile


@pytest.fixture
def indexer(data_dir: Path, embedder):
    registry.register(LayoutCaptioner)
    settings = Settings(data_dir=data_dir, captioner="test-layout")
    db = Database(settings.db_url)
    return lambda: Indexer(settings, db, embedder=embedder)


def captions_by_path(db: Database) -> dict[str, str]:
    with db.read() as session:
        rows = session.execute(select(File.path, Caption.text)
                               .join(Caption, Caption.photo_id == File.photo_id)).all()
    return dict(rows)


def errors_by_path(db: Database) -> dict[str, str]:
    with db.read() as session:
        return dict(session.execute(select(IndexingError.path, IndexingError.reason)).all())


@pytest.mark.slow
def test_every_file_is_indexed_or_recorded_and_the_run_goes_on(library, indexer, data_dir) -> None:
    root, odd, hostile = library
    run = indexer()
    summary = run.run([root])
    assert summary.new == 14 and summary.failed == len(hostile) == 8

    captions = captions_by_path(run.db)
    for name, expected in odd.items():
        assert captions[to_store(str(root / "odd" / name))] == expected, name
    assert to_store(str(root / "odd" / os.fsdecode(b"caf\xe9-latin1.jpg"))).endswith("caf\\xe9-latin1.jpg")
    assert len(captions) == 14  # grey16.png too, whatever its caption

    errors = errors_by_path(run.db)
    assert set(errors) == {str(root / "hostile" / name) for name in hostile}
    for name, fragment in hostile.items():
        assert fragment in errors[str(root / "hostile" / name)], name


@pytest.mark.slow
def test_errors_are_listed_counted_kept_and_retried_once_fixed(library, indexer, data_dir) -> None:
    root, _, hostile = library
    indexer().run([root])
    runner = CliRunner()
    listed = json.loads(runner.invoke(cli, ["errors", "--json", "--data-dir", str(data_dir)]).stdout)
    assert len(listed["errors"]) == 8 and all(e["reason"] for e in listed["errors"])
    status = json.loads(runner.invoke(cli, ["status", "--json", "--data-dir", str(data_dir)]).stdout)
    assert status["errors"] == 8 and status["photos"] == 14
    human = runner.invoke(cli, ["errors", "--data-dir", str(data_dir)]).stdout
    assert "truncated.jpg" in human and "decompression bomb" in human

    again = indexer().run([root])
    assert again.new == 0 and again.failed == 8 and not again.failures  # known, not retried

    fixed = root / "hostile" / "truncated.jpg"
    two_tone("yellow", "green", seed=99).save(fixed, quality=90)
    (root / "hostile" / "broken-link.jpg").unlink()
    run = indexer()
    summary = run.run([root])
    assert summary.new == 1 and summary.failed == 6
    assert captions_by_path(run.db)[str(fixed)] == "yellow over green"
    assert str(fixed) not in errors_by_path(run.db)
    assert str(root / "hostile" / "broken-link.jpg") not in errors_by_path(run.db)


def test_retry_failed_retries_unchanged_failures(tmp_path: Path, indexer) -> None:
    from tests.odd_files import bomb_png

    root = tmp_path / "photos"
    root.mkdir()
    (root / "big.png").write_bytes(bomb_png(12_001, 10_000))
    run = indexer()
    assert run.run([root]).failed == 1
    run.settings = run.settings.model_copy(update={"max_image_pixels": 200_000_000})
    assert run.run([root]).failures == []  # unchanged: not retried
    run.retry_failed = True
    assert run.run([root]).failures  # retried (and still broken: its pixel data is a stub)


def test_a_data_dir_inside_the_photo_folder_is_not_indexed(tmp_path: Path, embedder, colour_captioner) -> None:
    from tests.conftest import write_colour_photo

    root = tmp_path / "photos"
    write_colour_photo(root / "a.jpg", "red")
    settings = Settings(data_dir=root / "capdex-data", captioner="test-colour")
    db = Database(settings.db_url)
    Indexer(settings, db, embedder=embedder).run([root])
    summary = Indexer(settings, db, embedder=embedder).run([root])  # thumbnails (.webp) exist now
    assert summary.new == 0 and summary.scanned == 1
    with db.read() as session:
        assert len(session.scalars(select(Photo.id)).all()) == 1


def _run_within(run: Indexer, roots: list[Path], fifos: list[Path], seconds: float = 120):
    """The run's summary, failing if it blocks; a blocked read is let go (by opening the FIFOs
    for writing) so that a failing test still ends."""
    import threading

    outcome: dict[str, object] = {}
    thread = threading.Thread(target=lambda: outcome.update(summary=run.run(roots)), daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        for fifo in fifos:
            try:
                os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
            except OSError:
                pass
        thread.join(30)
        pytest.fail("the index run blocked on a FIFO")
    assert "summary" in outcome, "the run failed"
    return outcome["summary"]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this system")
def test_a_fifo_sidecar_is_ignored_not_waited_for(tmp_path: Path, indexer) -> None:
    """Issue 20, point 1: `mkfifo good.jpg.xmp` hung `capdex index` forever."""
    root = tmp_path / "photos"
    root.mkdir()
    two_tone("red", "blue").save(root / "good.jpg")
    os.mkfifo(root / "good.jpg.xmp")
    run = indexer()
    summary = _run_within(run, [root], [root / "good.jpg.xmp"])
    assert summary.new == 1
    assert captions_by_path(run.db) == {str(root / "good.jpg"): "red over blue"}


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this system")
def test_a_photo_swapped_for_a_fifo_after_the_scan_is_an_error_not_a_hang(tmp_path: Path, indexer, monkeypatch) -> None:
    """Issue 20, point 2: the scan saw a photo, the read met a FIFO (and waited forever)."""
    from capdex.indexer import pipeline

    root = tmp_path / "photos"
    root.mkdir()
    two_tone("red", "blue").save(root / "a.jpg")
    two_tone("green", "yellow").save(root / "b.jpg")
    real_scan = pipeline.scan

    def scan_then_swap(*args, **kwargs):
        found = real_scan(*args, **kwargs)
        (root / "b.jpg").unlink()
        os.mkfifo(root / "b.jpg")
        return found

    monkeypatch.setattr(pipeline, "scan", scan_then_swap)
    run = indexer()
    summary = _run_within(run, [root], [root / "b.jpg"])
    assert summary.new == 1 and summary.failed == 1
    assert "not a regular file" in errors_by_path(run.db)[str(root / "b.jpg")]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this system")
def test_a_stored_photo_swapped_for_a_fifo_is_skipped_when_decoded_again(tmp_path: Path, indexer) -> None:
    """A stored photo decoded again (`--recaption`) whose file is now a FIFO: not waited for."""
    root = tmp_path / "photos"
    root.mkdir()
    two_tone("red", "blue").save(root / "a.jpg")
    run = indexer()
    run.run([root])
    photo_copy = (root / "a.jpg").read_bytes()
    (root / "a.jpg").unlink()
    os.mkfifo(root / "a.jpg")
    again = indexer()
    flow_photos = {1: list(again.stages)}

    import threading

    from capdex.indexer.flow import Flow
    from capdex.indexer.pipeline import IndexSummary

    flow = Flow(again, IndexSummary(), again.stages)
    thread = threading.Thread(target=lambda: flow.run(flow.stored(flow_photos)), daemon=True)
    thread.start()
    thread.join(60)
    if thread.is_alive():
        os.close(os.open(root / "a.jpg", os.O_WRONLY | os.O_NONBLOCK))
        thread.join(30)
        pytest.fail("decoding a stored photo blocked on a FIFO")
    assert photo_copy  # the photo keeps its caption: nothing is lost
    assert captions_by_path(again.db) == {str(root / "a.jpg"): "red over blue"}


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this system")
def test_capdex_caption_refuses_a_fifo(tmp_path: Path, colour_captioner) -> None:
    import threading

    fifo = tmp_path / "photo.jpg"
    os.mkfifo(fifo)
    result: list[object] = []
    thread = threading.Thread(target=lambda: result.append(CliRunner().invoke(
        cli, ["caption", str(fifo), "--captioner", "test-colour", "--no-ocr",
              "--data-dir", str(tmp_path / "data")])), daemon=True)
    thread.start()
    thread.join(60)
    if thread.is_alive():
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        thread.join(30)
        pytest.fail("capdex caption blocked on a FIFO")
    outcome = result[0]
    assert outcome.exit_code != 0 and "not a regular file" in outcome.output


@pytest.mark.slow
def test_sigterm_ends_a_stuck_run_within_seconds_and_frees_the_data_dir(tmp_path: Path) -> None:
    """Issue 20, point 2: a run stuck in a read (or a model) ignored SIGTERM and held the data
    dir's lock until kill -9. Here the captioner takes 1000 s per photo."""
    import signal
    import subprocess
    import time

    from capdex.index_lock import index_lock_free
    from tests.conftest import write_colour_photo
    from tests.plugins import capdex_command, subprocess_env

    root, data = tmp_path / "photos", tmp_path / "data"
    write_colour_photo(root / "red.jpg", "red")
    env = subprocess_env(tmp_path / "site", CAPDEX_TEST_CAPTION_DELAY="1000",
                         CAPDEX_STOP_GRACE_SECONDS="2", XDG_DATA_HOME=str(tmp_path / "xdg"))
    proc = subprocess.Popen(capdex_command("index", str(root), "--data-dir", str(data),
                                           "--captioner", "test-slow", "--json"),
                            env=env, cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    settings = Settings(data_dir=data)
    try:
        deadline = time.monotonic() + 120
        while index_lock_free(settings) and time.monotonic() < deadline:  # until it runs
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.1)
        time.sleep(1)
        proc.send_signal(signal.SIGTERM)
        sent = time.monotonic()
        _, err = proc.communicate(timeout=30)
        took = time.monotonic() - sent
    finally:
        proc.kill()
    assert proc.returncode == 130 and took < 15, (proc.returncode, took, err)
    assert "aborted" in err and "Traceback" not in err
    assert index_lock_free(settings)


# -- a full disk (issue 20, point 5) ----------------------------------------------------------------
class DiskFillingCaptioner(LayoutCaptioner):
    """Fails as a model writing its weight cache to a full disk would, from its call `fail_at`."""

    name = "test-disk-full"
    calls = 0
    fail_at: int | None = None

    def caption_batch(self, images: Sequence[Image.Image]) -> list[str]:
        type(self).calls += 1
        if self.fail_at is not None and type(self).calls >= self.fail_at:
            import errno

            raise OSError(errno.ENOSPC, "No space left on device", "/cache/weights.bin.tmp")
        return super().caption_batch(images)


def photo_count(db: Database) -> int:
    with db.read() as session:
        return len(session.scalars(select(Photo.id)).all())


@pytest.fixture
def ten_photos(tmp_path: Path) -> Path:
    root = tmp_path / "photos"
    root.mkdir()
    colours = ["red", "green", "blue", "yellow", "white"]
    for i in range(10):
        two_tone(colours[i % 5], colours[(i + 1 + i // 5) % 5], seed=i).save(root / f"p{i}.jpg")
    return root


@pytest.fixture
def full_disk_indexer(data_dir: Path, embedder):
    registry.register(DiskFillingCaptioner)
    DiskFillingCaptioner.calls, DiskFillingCaptioner.fail_at = 0, None
    settings = Settings(data_dir=data_dir, captioner="test-disk-full", ocr=False)
    db = Database(settings.db_url)
    return lambda: Indexer(settings, db, embedder=embedder)


def test_a_full_disk_under_the_model_stops_the_run_and_blames_no_photo(ten_photos: Path, full_disk_indexer) -> None:
    from capdex.disk_full import DiskFull

    DiskFillingCaptioner.fail_at = 2  # the first batch (of 4) is captioned, then the disk fills
    run = full_disk_indexer()
    with pytest.raises(DiskFull, match="the disk is full .*No space left on device"):
        run.run([ten_photos])
    assert errors_by_path(run.db) == {}  # no photo marked as failed for it
    assert photo_count(run.db) == 4
    DiskFillingCaptioner.fail_at = None  # space freed
    summary = full_disk_indexer().run([ten_photos])
    assert summary.new == 6 and summary.failed == 0 and summary.unchanged == 4
    assert len(captions_by_path(run.db)) == 10 and errors_by_path(run.db) == {}


def test_a_full_database_disk_stops_the_run_and_the_next_run_finishes(ten_photos: Path, full_disk_indexer, monkeypatch) -> None:
    import sqlite3

    from sqlalchemy.exc import OperationalError

    from capdex.disk_full import DiskFull
    from capdex.store import photos

    real, calls = photos.create_photos, [0]

    def create_on_a_full_disk(*args, **kwargs):
        calls[0] += 1
        if calls[0] >= 2:
            raise OperationalError("INSERT INTO photos ...", {},
                                   sqlite3.OperationalError("database or disk is full"))
        return real(*args, **kwargs)

    monkeypatch.setattr(photos, "create_photos", create_on_a_full_disk)
    run = full_disk_indexer()
    with pytest.raises(DiskFull, match="database or disk is full"):
        run.run([ten_photos])
    assert errors_by_path(run.db) == {} and photo_count(run.db) == 4
    monkeypatch.setattr(photos, "create_photos", real)
    summary = full_disk_indexer().run([ten_photos])
    assert summary.new == 6 and summary.failed == 0
    assert len(captions_by_path(run.db)) == 10


def test_capdex_index_on_a_full_disk_says_so_in_one_message(ten_photos: Path, full_disk_indexer, data_dir: Path) -> None:
    DiskFillingCaptioner.fail_at = 1
    result = CliRunner().invoke(cli, ["index", str(ten_photos), "--data-dir", str(data_dir),
                                      "--captioner", "test-disk-full", "--no-ocr"])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit)
    assert "the disk is full" in result.stderr and "Free some space" in result.stderr
    assert "Traceback" not in result.output and len(result.stderr.splitlines()) == 1
