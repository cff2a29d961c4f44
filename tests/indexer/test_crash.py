"""Crash safety with real processes: `kill -9` at random moments, two indexers at once, and
searching (and editing captions) while an index run is in progress."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from capdex.embedder import Embedder
from capdex.settings import Settings
from capdex.indexer.human import set_human_caption
from capdex.search.engine import SearchEngine
from capdex.store.db import Database
from tests.conftest import COLOURS, write_colour_photo
from tests.consistency import assert_consistent
from tests.plugins import capdex_command, subprocess_env

EMBEDDER = "sentence-transformers/all-MiniLM-L6-v2"
pytestmark = pytest.mark.slow


def make_library(root: Path, count: int, start: int = 0) -> None:
    """`count` distinct small photos in a few folders."""
    colours = list(COLOURS)
    for i in range(start, start + count):
        write_colour_photo(root / f"album-{i % 3}" / f"p{i:03d}.jpg", colours[i % len(colours)],
                           seed=i)


def start_indexer(tmp_path: Path, root: Path, data_dir: Path, delay: float) -> subprocess.Popen:
    env = subprocess_env(tmp_path / "site", CAPDEX_INDEX_SAVE_SECONDS="0",
                         CAPDEX_TEST_CAPTION_DELAY=str(delay), XDG_DATA_HOME=str(tmp_path / "xdg"))
    return subprocess.Popen(
        capdex_command("index", str(root), "--data-dir", str(data_dir), "--captioner",
                       "test-slow", "--json"),
        env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def photos_committed(data_dir: Path) -> int:
    try:
        with sqlite3.connect(f"file:{data_dir / 'capdex.db'}?mode=ro", uri=True, timeout=5) as conn:
            return conn.execute("SELECT count(*) FROM photos").fetchone()[0]
    except sqlite3.Error:
        return 0  # not created (or not migrated) yet


def wait_until(condition, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def finish(proc: subprocess.Popen, timeout: float = 120) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


def test_kill_9_at_random_moments_then_a_clean_run_leaves_everything_consistent(tmp_path: Path) -> None:
    seed = int(os.environ.get("CAPDEX_TEST_SEED", random.randrange(1 << 30)))
    rng = random.Random(seed)
    root, data_dir = tmp_path / "photos", tmp_path / "data"
    make_library(root, 36)
    kills = []
    for round_ in range(4):
        before = photos_committed(data_dir)
        proc = start_indexer(tmp_path, root, data_dir, delay=0.08)
        if round_ == 0:
            time.sleep(rng.uniform(0.2, 3.0))  # anywhere: start-up, migration, first batches
        else:  # a random moment while batches are being committed and the index saved
            wait_until(lambda: photos_committed(data_dir) > before or proc.poll() is not None, 60)  # noqa: B023 - called in this iteration
            time.sleep(rng.uniform(0.0, 0.8))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
        code, _, err = finish(proc)
        kills.append((round_, code, photos_committed(data_dir)))
        assert code in (0, -signal.SIGKILL), err
        # Change the library between crashes, so recovery meets moves, copies and deletions.
        if round_ == 1:
            shutil.move(root / "album-0", root / "renamed-album")
        elif round_ == 2:
            (root / "album-1" / "p001.jpg").unlink()
            shutil.copy(root / "album-2" / "p002.jpg", root / "copy-of-p002.jpg")
        elif round_ == 3:
            make_library(root, 4, start=100)

    print(f"seed {seed}; (round, exit code, photos committed) after each kill: {kills}")
    code, out, err = finish(start_indexer(tmp_path, root, data_dir, delay=0.0))
    assert code == 0, err
    assert json.loads(out)["failed"] == 0
    counts = assert_consistent(data_dir, root, EMBEDDER)
    assert counts == {"files": 40, "photos": 39, "vectors": 39}, (seed, kills)


def test_two_indexers_at_once_never_corrupt_the_store(tmp_path: Path) -> None:
    root, data_dir = tmp_path / "photos", tmp_path / "data"
    make_library(root, 24)
    first = start_indexer(tmp_path, root, data_dir, delay=0.1)
    second = start_indexer(tmp_path, root, data_dir, delay=0.1)  # same moment, fresh data dir
    assert wait_until(lambda: photos_committed(data_dir) > 0, 60), "no progress"
    late = start_indexer(tmp_path, root, data_dir, delay=0.1)  # surely while one is running
    results = [finish(p) for p in (first, second, late)]
    codes = [code for code, _, _ in results]
    assert codes[2] == 2 and "another capdex index run is using" in results[2][2]
    assert sorted(codes[:2]) in ([0, 0], [0, 2]), [err for _, _, err in results]
    for code, _, err in results:
        if code == 2:
            assert "another capdex index run is using" in err and "Traceback" not in err
    new = sum(json.loads(out)["new"] for code, out, _ in results if code == 0)
    assert new == 24  # one did the work; a second one (if it ran after) found nothing to do
    assert_consistent(data_dir, root, EMBEDDER)


def test_search_and_caption_edits_work_while_an_index_run_is_in_progress(tmp_path: Path, embedder: Embedder) -> None:
    root, data_dir = tmp_path / "photos", tmp_path / "data"
    make_library(root, 30)
    proc = start_indexer(tmp_path, root, data_dir, delay=0.1)
    assert wait_until(lambda: photos_committed(data_dir) >= 4 or proc.poll() is not None, 60)
    settings = Settings(data_dir=data_dir)
    db = Database(settings.db_url)
    engine = SearchEngine(settings, db, embedder)
    seen: list[int] = []
    edited = False
    while proc.poll() is None:
        seen.append(len(engine.search("a picture", k=100).results))
        if not edited and seen[-1]:
            photo_id = engine.search("a picture", k=1).results[0].id
            set_human_caption(db, embedder, photo_id, "a hand-written caption").apply_to(engine.index, db)
            edited = True
        time.sleep(0.1)
    code, _, err = finish(proc)
    assert code == 0, err
    assert any(0 < n < 30 for n in seen), seen  # partial results while the run was going
    # every photo is searchable (the edited one's caption no longer says "picture": no cut-off)
    assert len(engine.search("a picture", k=100, min_score=-1).results) == 30
    assert edited and engine.search("hand-written caption", k=1).results[0].caption == "a hand-written caption"
    assert_consistent(data_dir, root, EMBEDDER)
