"""Atomic writes, and cleaning up after writers that were killed mid-write."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from capdex.atomic import atomic_write_bytes, remove_stale_temp_files, temp_file_owner


def test_atomic_write_leaves_no_temp_files(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "file.bin"
    atomic_write_bytes(target, b"one")
    atomic_write_bytes(target, b"two")
    assert target.read_bytes() == b"two"
    assert [p.name for p in target.parent.iterdir()] == ["file.bin"]


def test_temp_names_stay_short_for_long_target_names(tmp_path: Path) -> None:
    target = tmp_path / ("a" * 250 + ".xmp")  # 254 bytes: a longer temp name would not fit
    atomic_write_bytes(target, b"x")
    assert target.read_bytes() == b"x"


def test_only_temp_files_of_dead_writers_are_removed(tmp_path: Path) -> None:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    dead_pid = int(dead.stdout)
    (tmp_path / "deep").mkdir()
    left = [tmp_path / f".capdex-{dead_pid}-abc.tmp", tmp_path / "deep" / f".capdex-{dead_pid}-x.tmp"]
    mine = tmp_path / f".capdex-{os.getpid()}-live.tmp"
    other = tmp_path / ".capdex-notes.tmp"
    for path in [*left, mine, other]:
        path.write_bytes(b"partial")
    assert temp_file_owner(left[0].name) == dead_pid and temp_file_owner(other.name) is None
    assert remove_stale_temp_files(tmp_path) == 1  # not recursive: only the top folder
    assert remove_stale_temp_files(tmp_path, recursive=True) == 1
    assert not any(p.exists() for p in left) and mine.exists() and other.exists()


def test_a_non_durable_write_is_still_atomic_and_leaves_no_temp_file(tmp_path):
    from capdex.atomic import atomic_write_bytes

    target = tmp_path / "sub" / "cache.bin"
    atomic_write_bytes(target, b"old", durable=False)
    atomic_write_bytes(target, b"new", durable=False)
    assert target.read_bytes() == b"new"
    assert [p.name for p in target.parent.iterdir()] == ["cache.bin"]


def test_a_writer_given_a_file_name_replaces_the_file_or_leaves_it_whole(tmp_path: Path) -> None:
    import pytest

    from capdex.atomic import atomic_write_with

    target = tmp_path / "index.bin"
    atomic_write_with(target, lambda name: Path(name).write_bytes(b"first"))
    assert target.read_bytes() == b"first"

    def fails_halfway(name: str) -> None:
        Path(name).write_bytes(b"half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write_with(target, fails_halfway)
    assert target.read_bytes() == b"first"
    assert [p.name for p in tmp_path.iterdir()] == ["index.bin"]
