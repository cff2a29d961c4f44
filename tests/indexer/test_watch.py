"""Watch mode: a real watchdog observer on a temp folder; every change is searchable in seconds."""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from capdex.settings import Settings
from capdex.indexer.pipeline import Indexer, IndexerError, IndexSummary
from capdex.indexer.watch import ChangeWatcher, scopes_for
from capdex.search.engine import SearchEngine
from capdex.store.db import Database
from capdex.store.models import Caption, File
from tests.conftest import write_colour_photo
from tests.indexer.test_captions import xmp

WAIT = 30.0  # generous: CI machines are slow; a passing run takes a second or two per step


def wait_for(condition: Callable[[], object], what: str, timeout: float = WAIT) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_scopes_cover_changes_with_the_fewest_paths(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    for name in ("IMG_1.JPG", "IMG_1.png", "IMG_2.jpg"):
        (tmp_path / "a" / name).write_bytes(b"x")
    paths = [str(tmp_path / "a" / "IMG_1.xmp"), str(tmp_path / "a" / "IMG_2.jpg.xmp"),
             str(tmp_path / "b"), str(tmp_path / "b" / "inside.jpg"), str(tmp_path / "c.jpg")]
    assert scopes_for(paths) == sorted([str(tmp_path / "a" / "IMG_1.JPG"),
                                        str(tmp_path / "a" / "IMG_1.png"),
                                        str(tmp_path / "a" / "IMG_2.jpg"),
                                        str(tmp_path / "b"), str(tmp_path / "c.jpg")])


def test_only_photo_events_outside_hidden_and_excluded_folders_count(tmp_path: Path) -> None:
    watcher = ChangeWatcher([str(tmp_path)], exclude=[str(tmp_path / "data")])
    relevant = watcher._relevant
    assert relevant(str(tmp_path / "x" / "a.JPG"), False)
    assert relevant(str(tmp_path / "a.jpg.xmp"), False)
    assert relevant(str(tmp_path / "new-folder"), True)
    assert not relevant(str(tmp_path / "notes.txt"), False)
    assert not relevant(str(tmp_path / ".cache" / "a.jpg"), False)
    assert not relevant(str(tmp_path / "data" / "thumbnails" / "ab" / "x.webp"), False)
    assert not relevant("/elsewhere/a.jpg", False)


@pytest.fixture
def watching(tmp_path: Path, embedder, colour_captioner) -> Iterator[tuple]:
    """An indexer watching `photos/` in a thread, and a search engine of its own (as a server)."""
    root = tmp_path / "photos"
    write_colour_photo(root / "red.jpg", "red")
    settings = Settings(data_dir=tmp_path / "data", captioner="test-colour",
                        watch_debounce_seconds=0.3, watch_max_delay_seconds=3)
    indexer = Indexer(settings, Database(settings.db_url), embedder=embedder)
    batches: list[IndexSummary] = []
    errors: list[BaseException] = []

    def target() -> None:
        try:
            indexer.watch([root], on_batch=batches.append)
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    wait_for(lambda: batches or errors, "the first full pass")
    db = Database(settings.db_url)
    engine = SearchEngine(settings, db, embedder)
    yield root, settings, db, engine, batches, errors
    indexer.stop.set()
    thread.join(WAIT)
    assert not thread.is_alive(), "watch mode did not stop"
    assert not errors, errors


def names_found(engine: SearchEngine, query: str) -> dict[str, str]:
    return {Path(h.path).name: h.caption for h in engine.search(query, k=50).results}


@pytest.mark.slow
def test_new_moved_changed_and_deleted_photos_show_up_in_seconds(watching) -> None:
    root, settings, db, engine, batches, errors = watching
    assert batches[0].new == 1

    write_colour_photo(root / "blue.jpg", "blue", seed=1)
    wait_for(lambda: "blue.jpg" in names_found(engine, "blue"), "a new photo to be searchable")

    (root / "2024").mkdir()
    shutil.move(root / "blue.jpg", root / "2024" / "sea.jpg")
    wait_for(lambda: "sea.jpg" in names_found(engine, "blue"), "a moved photo's new path")
    assert "blue.jpg" not in names_found(engine, "blue")
    # Not captioned again. (A move within one batch counts as "moved"; when the events fall
    # into two batches it is a copy, then a removal: same outcome.)
    # The batch's summary is reported when its pass ends, a moment after its commit is seen.
    wait_for(lambda: any(b.moved or b.copied for b in batches), "the move's batch report")
    assert sum(b.new for b in batches) == 2

    write_colour_photo(root / "red.jpg", "yellow", seed=2)  # edited in place
    wait_for(lambda: names_found(engine, "yellow").get("red.jpg") == "a plain yellow picture",
             "an edited photo's new caption")

    (root / "2024" / "sea.jpg").unlink()
    wait_for(lambda: "sea.jpg" not in names_found(engine, "blue"), "a deleted photo to go")

    outside = root.parent / "card"
    write_colour_photo(outside / "DCIM" / "green.jpg", "green", seed=3)
    shutil.move(outside / "DCIM", root / "DCIM")  # a whole folder moved in
    wait_for(lambda: "green.jpg" in names_found(engine, "green"), "a moved-in folder")

    (root / "DCIM" / "green.jpg.xmp").write_text(xmp("our garden in spring"))
    wait_for(lambda: names_found(engine, "garden").get("green.jpg") == "our garden in spring",
             "a sidecar edit")

    with db.read() as session:  # each photo once, files exactly those on disk
        paths = sorted(session.scalars(select(File.path)))
        assert paths == sorted(str(p) for p in root.rglob("*.jpg"))
        assert len(session.scalars(select(Caption.id).where(Caption.source == "machine")).all()) == 4


@pytest.mark.slow
def test_a_second_indexer_is_refused_while_watching(watching, embedder) -> None:
    root, settings, *_ = watching
    with pytest.raises(IndexerError, match="another capdex index run"):
        Indexer(settings, Database(settings.db_url), embedder=embedder).run([root])


def test_polling_sees_changes_too(tmp_path: Path) -> None:
    """--poll (network shares): the same batches, from re-listing instead of OS events."""
    stop = threading.Event()
    timer = threading.Timer(WAIT, stop.set)  # bounded: an empty batch fails the test
    timer.start()
    with ChangeWatcher([str(tmp_path)], poll=True, poll_interval=0.2) as watcher:
        time.sleep(0.5)  # the first listing
        write_colour_photo(tmp_path / "new.jpg", "red")
        batch = watcher.next_batch(stop, debounce=0.2, max_delay=5)
    timer.cancel()
    assert str(tmp_path / "new.jpg") in batch
