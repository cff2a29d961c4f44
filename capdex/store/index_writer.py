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

    The index is opened lazily (a run that changes no vector never imports FAISS), or taken
    from `index` — a callable, so a searcher that reloads its index when another process saved
    (`SearchEngine.index`) and the writer always share the current one.
    """

    def __init__(self, settings: Settings, db: Database, embedder: str,
                 dim: int | Callable[[], int], *,
                 index: Callable[[], VectorIndex] | None = None) -> None:
        self.settings = settings
        self.db = db
        self.embedder = embedder
        self._dim = dim
        self._provider = index
        self._index: VectorIndex | None = None
        self._dirty = False
        self._last_save = time.monotonic()

    @property
    def opened(self) -> bool:
        return self._provider is not None or self._index is not None

    @property
    def index(self) -> VectorIndex:
        """The index in memory; opening it brings the file in line with the database."""
        if self._provider is not None:
            return self._provider()
        if self._index is None:
            self._index = open_index(
                self.settings.index_path, self.db, self.embedder, self._dim,
                self.settings.exact_search_max, compress_above=self.settings.vector_compress_above)
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
        self.save()

    def maybe_save(self) -> None:
        """Save if the index changed and `index_save_seconds` passed since the last save."""
        if time.monotonic() - self._last_save >= self.settings.index_save_seconds:
            self.save()

    def save(self, *, check: bool = False) -> None:
        """Save the index if it changed. With `check` (the end of a full pass) also make sure
        the file holds the database's vectors, even when nothing changed here.

        The check reads the file's metadata and one count/max query (`index_is_current`);
        only when they disagree (a crash after a commit, another writer, a missing or truncated
        file, another embedder) is the index opened, repaired from the database and saved.
        """
        if check and not self.opened and not index_is_current(
                self.settings.index_path, self.db, self.embedder,
                self.settings.exact_search_max, self.settings.vector_compress_above):
            _ = self.index  # opening repairs and saves
        if self._dirty:
            self.index.save(self.db)
            self._dirty = False
        self._last_save = time.monotonic()

    def sync(self) -> None:
        """Open the index (repairing it from the database if they differ) and save it."""
        _ = self.index
        self.save()

    def start_over(self) -> None:
        """An empty index (after every vector of the embedder was deleted, `--reembed`)."""
        dim = self._dim() if callable(self._dim) else self._dim
        self._index = VectorIndex(self.settings.index_path, self.embedder, dim,
                                  self.settings.exact_search_max,
                                  compress_above=self.settings.vector_compress_above,
                                  source=db_source(self.db, dim))
        self._dirty = True
