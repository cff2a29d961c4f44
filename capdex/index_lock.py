"""The data dir's index lock (`index.lock`): one writer of photos at a time per data dir — an
index run, a watcher, a server's index job or `capdex import`. Searching and people's caption
edits never take it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from filelock import FileLock, Timeout

if TYPE_CHECKING:
    from capdex.settings import Settings


class DataDirBusy(RuntimeError):
    """Another process holds the data dir's index lock; str(error) says so."""


def lock_path(settings: Settings) -> Path:
    return settings.data_dir / "index.lock"


@contextmanager
def index_lock(settings: Settings) -> Iterator[None]:
    """Hold the index lock for the block, or raise DataDirBusy at once (never wait)."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(lock_path(settings)))
    try:
        lock.acquire(timeout=0)
    except Timeout as exc:
        raise DataDirBusy(f"another capdex index run is using {settings.data_dir}; wait for it "
                          "to finish (searching works meanwhile)") from exc
    try:
        yield
    finally:
        lock.release()


def index_lock_free(settings: Settings) -> bool:
    """Whether no other process holds the index lock right now."""
    try:
        with index_lock(settings):
            return True
    except DataDirBusy:
        return False
