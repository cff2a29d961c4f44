"""The one owner of a process's FAISS upkeep: add, remove, save and repair go through here.

Whoever changes vector rows (an index run, the server or `capdex caption-set` storing a human
caption, `capdex import`) commits them to the database first, then hands the `VectorChange`
to an `IndexWriter`, which keeps the in-memory index in line and saves it: at once for a
person's edit, every `index_save_seconds` during a run, and at the end of a run. The database
stays the truth; see `capdex.store.vectors` for how a save merges other processes' vectors.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from capdex.store.vectors import VectorIndex, db_source, index_is_current, open_index

if TYPE_CHECKING:
    from capdex.settings import Settings
    from capdex.store.db import Database


@dataclass
class VectorChange:
    """Vector rows a committed transaction removed and added (for the in-memory index)."""

    removed: list[int] = field(default_factory=list)
    added: list[tuple[int, np.ndarray]] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.removed or self.added)

    def extend(self, other: VectorChange) -> None:
        self.removed += other.removed
        self.added += other.added


class IndexWriter:
    """Keeps one embedder's vector index in line with committed vector rows, and saves it.

    `for_data_dir` opens the data dir's index lazily (a run that changes no vector never
    imports FAISS); `live` wraps an index someone else keeps — a callable, so a searcher that
    reloads its index when another process saved (`SearchEngine.index`) and the writer always
    share the current one.
    """

    def __init__(self, db: Database, index: Callable[[], VectorIndex], *, cache: bool,
                 save_seconds: float = 0.0, is_current: Callable[[], bool] | None = None,
                 empty: Callable[[], VectorIndex] | None = None) -> None:
        self.db = db
        self._open, self._cache = index, cache
        self._save_seconds = save_seconds
        self._is_current = is_current
        self._empty = empty
        self._index: VectorIndex | None = None
        self._dirty = False
        self._last_save = time.monotonic()

    @classmethod
    def for_data_dir(cls, settings: Settings, db: Database, embedder: str,
                     dim: int | Callable[[], int]) -> IndexWriter:
        """The writer of the data dir's index file for `embedder` (opened on first use)."""

        def opened() -> VectorIndex:
            return open_index(settings.index_path, db, embedder, dim, settings.exact_search_max,
                              compress_above=settings.vector_compress_above)

        def current() -> bool:
            return index_is_current(settings.index_path, db, embedder, settings.exact_search_max,
                                    settings.vector_compress_above)

        def empty() -> VectorIndex:
            size = dim() if callable(dim) else dim
            return VectorIndex(settings.index_path, embedder, size, settings.exact_search_max,
                               compress_above=settings.vector_compress_above,
                               source=db_source(db, size))

        return cls(db, opened, cache=True, save_seconds=settings.index_save_seconds,
                   is_current=current, empty=empty)

    @classmethod
    def for_looks(cls, settings: Settings, db: Database, model: str, dim: int) -> IndexWriter:
        """The writer of the data dir's looks index (`store.looks`: what photos look like to
        `model`), beside the caption index. Its rows are written by stages, which report no
        change: `catch_up` brings the index in line with them."""
        from capdex.store import looks

        path = settings.data_dir / looks.INDEX_FILE

        def opened() -> VectorIndex:
            return open_index(path, db, model, dim, settings.exact_search_max,
                              compress_above=settings.vector_compress_above, rows=looks.ROWS)

        def current() -> bool:
            return index_is_current(path, db, model, settings.exact_search_max,
                                    settings.vector_compress_above, rows=looks.ROWS)

        return cls(db, opened, cache=True, save_seconds=settings.index_save_seconds,
                   is_current=current)

    @classmethod
    def live(cls, db: Database, index: Callable[[], VectorIndex]) -> IndexWriter:
        """A writer for an index kept in memory elsewhere (a searcher's), saving every change."""
        return cls(db, index, cache=False)

    @property
    def opened(self) -> bool:
        return not self._cache or self._index is not None

    @property
    def index(self) -> VectorIndex:
        """The index in memory; opening it brings the file in line with the database."""
        if not self._cache:
            return self._open()
        if self._index is None:
            self._index = self._open()
        return self._index

    def apply(self, change: VectorChange) -> None:
        """Bring the in-memory index up to date with a committed change (saved later)."""
        if change.removed:
            self.index.remove(change.removed)
            self._dirty = True
        if change.added:
            self.index.add(np.array([i for i, _ in change.added]),
                           np.stack([v for _, v in change.added]))
            self._dirty = True

    def apply_and_save(self, change: VectorChange) -> None:
        """For a person's edit: the very next search, here or in another process, sees it."""
        self.apply(change)
        self._dirty = True  # saving also merges what other processes committed
        self.save()

    def maybe_save(self) -> None:
        """Save if the index changed and `index_save_seconds` passed since the last save."""
        if time.monotonic() - self._last_save >= self._save_seconds:
            self.save()

    def save(self, *, check: bool = False) -> None:
        """Save the index if it changed. With `check` (the end of a full pass) also make sure
        the file holds the database's vectors, even when nothing changed here.

        The check reads the file's metadata and one count/max query (`index_is_current`);
        only when they disagree (a crash after a commit, another writer, a missing or truncated
        file, another embedder) is the index opened, repaired from the database and saved.
        """
        if check and not self.opened and self._is_current is not None \
                and not self._is_current():
            _ = self.index  # opening repairs and saves
        if self._dirty:
            self.index.save(self.db)
            self._dirty = False
        self._last_save = time.monotonic()

    def catch_up(self, *, now: bool = True) -> None:
        """Match the database's rows and save, when they changed since the last save (one
        count/max query when they did not). Without `now`, only every `index_save_seconds`."""
        if not now and time.monotonic() - self._last_save < self._save_seconds:
            return
        if self._is_current is not None and not self._dirty and self._is_current():
            self._last_save = time.monotonic()
            return
        if self.opened:
            self._dirty = True  # saving brings it in line with the database first
        else:
            _ = self.index  # opening repairs and saves
        self.save()

    def sync(self) -> None:
        """Open the index (repairing it from the database if they differ) and save it."""
        _ = self.index
        self.save()

    def start_over(self) -> None:
        """An empty index (after every vector of the embedder was deleted, `--reembed`)."""
        if self._empty is None:
            raise RuntimeError("this index writer cannot start over")
        self._index = self._empty()
        self._dirty = True
