"""The FAISS vector index: a rebuildable cache of the `vectors` table for one embedder.

The database is the source of truth. The index file is written atomically and, on open,
checked against the database; whatever disagrees is repaired from the stored vectors. A run
that changed no vector need not open it: `index_is_current` compares the metadata a synced save
records (count, highest id, file size) with one count/max query.

Several processes write vectors to one database (an index run, the server storing a human
caption, `capdex caption-set`), each with the index in memory. So that no writer's save drops
another's vectors from the file, every save with a database holds `vectors.faiss.lock` (briefly;
others wait) and first brings the in-memory index in line with the database (`sync_with`): the
file written is always exactly the committed vectors, whoever writes last.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from filelock import FileLock

from capdex.atomic import atomic_write_bytes

if TYPE_CHECKING:
    from store.db import Database

log = logging.getLogger(__name__)

__all__ = ["RepairReport", "VectorIndex", "index_is_current", "open_index", "read_meta"]
#: How long a save waits for another process's save before giving up.
SAVE_LOCK_TIMEOUT = 300.0


def _faiss():  # type: ignore[no-untyped-def]
    import faiss

    return faiss


@dataclass(frozen=True)
class RepairReport:
    """What `VectorIndex.sync_with` changed to match the database."""

    added: int = 0
    removed: int = 0
    rebuilt: bool = False

    @property
    def changed(self) -> bool:
        return bool(self.added or self.removed or self.rebuilt)


FLAT = "flat"
IVF = "ivf"


def _refit(kind: str, size: int, trained_on: int, exact_max: int | None) -> str | None:
    """The kind an index of `size` vectors should become (None: stay as it is); see
    `VectorIndex.fit_to_size`."""
    if exact_max is None:
        return None
    if kind == FLAT:
        return IVF if size > exact_max else None
    if size < exact_max // 2:
        return FLAT
    if size > 4 * trained_on or size < trained_on // 4:
        return IVF
    return None


def ivf_shape(count: int) -> tuple[int, int]:
    """(lists, lists probed per query) for an IVF index of `count` vectors.

    About 2·sqrt(n) lists, a tenth of them probed: recall@10 stays above 0.95 on clustered
    embeddings (tests/store/test_vectors_approximate.py) while scanning ~10% of the vectors.
    """
    # k-means wants at least 39 training points per list
    nlist = max(16, min(65_536, int(2 * count**0.5), count // 39))
    return nlist, max(8, nlist // 10)


class VectorIndex:
    """Inner-product FAISS index keyed by vector row ids.

    Exact (`IndexIDMap2` over `IndexFlatIP`) up to `exact_max` vectors; above it an
    approximate `IndexIVFFlat` (which, unlike HNSW, supports removal and range search) built
    from the vectors held, and rebuilt when the size moves far from what it was trained on.
    `exact_max=None` keeps the index exact whatever its size.
    """

    def __init__(self, path: Path, embedder: str, dim: int, exact_max: int | None = None) -> None:
        self.path = path
        self.embedder = embedder
        self.dim = dim
        self.exact_max = exact_max
        self._lock = threading.RLock()
        self._index = self._empty()
        self._trained_on = 0  # vectors the IVF index was trained on (0: exact index)
        self._loaded_stamp: tuple[int, int] | None = None

    # -- construction -------------------------------------------------------------------------
    def _empty(self):  # type: ignore[no-untyped-def]
        faiss = _faiss()
        return faiss.IndexIDMap2(faiss.IndexFlatIP(self.dim))

    @property
    def kind(self) -> str:
        """"flat" (exact) or "ivf" (approximate)."""
        return IVF if self._trained_on else FLAT

    def _build_ivf(self, ids: np.ndarray, vectors: np.ndarray):  # type: ignore[no-untyped-def]
        faiss = _faiss()
        nlist, nprobe = ivf_shape(len(ids))
        index = faiss.IndexIVFFlat(faiss.IndexFlatIP(self.dim), self.dim, nlist,
                                   faiss.METRIC_INNER_PRODUCT)
        index.cp.spherical = True  # centroids on the unit sphere, like the vectors
        index.cp.niter = 10
        rng = np.random.default_rng(0)
        sample = vectors[rng.choice(len(vectors), min(len(vectors), 64 * nlist), replace=False)]
        index.train(np.ascontiguousarray(sample))
        index.set_direct_map_type(faiss.DirectMap.Hashtable)  # reconstruct and remove by id
        index.nprobe = nprobe
        index.add_with_ids(np.ascontiguousarray(vectors), np.ascontiguousarray(ids))
        return index

    def _contents(self) -> tuple[np.ndarray, np.ndarray]:
        """Every id and vector held (ids, matrix), read straight from FAISS's storage."""
        faiss = _faiss()
        if self.kind == FLAT:
            ids = faiss.vector_to_array(self._index.id_map).astype(np.int64)
            return ids, self._index.index.reconstruct_n(0, len(ids))
        lists, id_parts, vector_parts = self._index.invlists, [], []
        for i in range(self._index.nlist):
            size = lists.list_size(i)
            if size:
                id_parts.append(faiss.rev_swig_ptr(lists.get_ids(i), size).copy())
                codes = faiss.rev_swig_ptr(lists.get_codes(i), size * lists.code_size).copy()
                vector_parts.append(codes.view(np.float32).reshape(size, self.dim))
        if not id_parts:
            return np.empty(0, np.int64), np.empty((0, self.dim), np.float32)
        return np.concatenate(id_parts).astype(np.int64), np.concatenate(vector_parts)

    def fit_to_size(self) -> bool:
        """Switch between exact and approximate search when the size calls for it; True if so.

        Exact up to `exact_max`; IVF above it, retrained when the index has grown to 4× (or
        shrunk to ¼ of) what it was trained on; exact again below half of `exact_max`.
        """
        with self._lock:
            size = len(self)
            wanted = _refit(self.kind, size, self._trained_on, self.exact_max)
            if wanted is None:
                return False
            ids, vectors = self._contents()
            if wanted == IVF:
                log.info("vector index: %d vectors, building an approximate (IVF) index", size)
                self._index, self._trained_on = self._build_ivf(ids, vectors), size
            else:
                log.info("vector index: %d vectors, back to exact search", size)
                self._index, self._trained_on = self._empty(), 0
                self._index.add_with_ids(vectors, ids)
            return True

    @property
    def meta_path(self) -> Path:
        return self.path.with_suffix(self.path.suffix + ".json")

    @property
    def lock_path(self) -> Path:
        return self.path.with_suffix(self.path.suffix + ".lock")

    def load(self) -> bool:
        """Read the index file if it exists and was built for this embedder; True if read."""
        with self._lock:
            try:
                meta = json.loads(self.meta_path.read_text())
                if meta.get("embedder") != self.embedder or meta.get("dim") != self.dim:
                    log.info("vector index was built for another embedder; it will be rebuilt")
                    return False
                faiss = _faiss()
                index = faiss.read_index(str(self.path))  # already of its concrete type
                # the file, not the metadata, says which kind it is (a crash may part them)
                trained_on = 0 if isinstance(index, faiss.IndexIDMap2) \
                    else int(meta.get("trained_on") or index.ntotal) or 1
                if trained_on and not isinstance(index, faiss.IndexIVFFlat):
                    raise ValueError(f"unexpected index type {type(index).__name__}")
            except FileNotFoundError:
                return False
            except Exception as exc:  # noqa: BLE001 - any unreadable file is rebuilt
                log.warning("vector index %s is unreadable (%s); it will be rebuilt", self.path, exc)
                return False
            if index.d != self.dim:
                return False
            self._index, self._trained_on = index, trained_on
            self._loaded_stamp = self._stamp()
            return True

    def _stamp(self) -> tuple[int, int, int] | None:
        # Every save renames a new file into place, so the inode tells saves apart even when
        # two land within the file system's timestamp granularity with the same size.
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return None
        return (st.st_ino, st.st_mtime_ns, st.st_size)

    def changed_on_disk(self) -> bool:
        """True when another process saved a newer index file since we loaded or saved ours."""
        return self._stamp() != self._loaded_stamp

    def save(self, db: Database | None = None) -> None:
        """Persist atomically (temp file, fsync, rename; then the small metadata file).

        With `db`, first match the database under the cross-process save lock, so this save
        cannot drop vectors another process committed (see the module docstring). Without it
        (tests, tools with no database) the in-memory contents are written as they are.
        """
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(self.lock_path), timeout=SAVE_LOCK_TIMEOUT), self._lock:
            if db is not None:
                self.sync_with(db)
            self.fit_to_size()
            data = _faiss().serialize_index(self._index).tobytes()
            atomic_write_bytes(self.path, data)
            meta: dict[str, object] = {"embedder": self.embedder, "dim": self.dim,
                                       "count": int(self._index.ntotal)}
            if self.kind == IVF:
                meta.update(kind=IVF, trained_on=self._trained_on)
            if db is not None:  # the file holds exactly the database's vectors: say which
                ids = self.ids()
                meta.update(max_id=int(ids.max()) if len(ids) else None, size=len(data))
            atomic_write_bytes(self.meta_path, json.dumps(meta).encode())
            self._loaded_stamp = self._stamp()

    # -- contents -----------------------------------------------------------------------------
    def __len__(self) -> int:
        return int(self._index.ntotal)

    def ids(self) -> np.ndarray:
        faiss = _faiss()
        with self._lock:
            if self.kind == FLAT:
                return faiss.vector_to_array(self._index.id_map).astype(np.int64)
            lists = self._index.invlists
            parts = [faiss.rev_swig_ptr(lists.get_ids(i), lists.list_size(i)).copy()
                     for i in range(self._index.nlist) if lists.list_size(i)]
            return np.concatenate(parts).astype(np.int64) if parts else np.empty(0, np.int64)

    def _remove(self, ids: np.ndarray) -> int:
        if self.kind == FLAT:
            return int(self._index.remove_ids(ids))
        # the IVF id hashtable removes only by an explicit id array
        return int(self._index.remove_ids(_faiss().IDSelectorArray(ids)))

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Add (or replace) vectors under the given ids."""
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        vectors = np.ascontiguousarray(vectors, dtype=np.float32).reshape(len(ids), self.dim)
        if not len(ids):
            return
        with self._lock:
            self._remove(ids)
            self._index.add_with_ids(vectors, ids)

    def remove(self, ids: np.ndarray | list[int]) -> int:
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        if not len(ids):
            return 0
        with self._lock:
            return self._remove(ids)

    def _params(self, among: np.ndarray | None, exhaustive: bool = False):  # type: ignore[no-untyped-def]
        """Search parameters restricting results to the ids `among` (None: all).

        On the IVF index a small enough `among` (or any, if `exhaustive`) is searched in every
        list: the probed lists might hold few of its ids, and skipping the others costs little.
        """
        faiss = _faiss()
        exhaustive = exhaustive or (among is not None and self.exact_max is not None
                                    and len(among) <= self.exact_max)
        selector = faiss.IDSelectorBatch(np.ascontiguousarray(among, dtype=np.int64)) \
            if among is not None else None
        if self.kind == FLAT:
            return faiss.SearchParameters(sel=selector) if selector is not None else None
        params = faiss.SearchParametersIVF(nprobe=self._index.nlist if exhaustive
                                           else self._index.nprobe)
        if selector is not None:
            params.sel = selector
        params._selector = selector  # keep it alive as long as the parameters
        return params

    def search(self, queries: np.ndarray, k: int,
               among: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Top-k (scores, ids) per query row, optionally only among some ids; missing slots
        have id -1."""
        queries = np.ascontiguousarray(queries, dtype=np.float32).reshape(-1, self.dim)
        with self._lock:
            k = max(1, min(k, len(self))) if len(self) else 1
            params = self._params(among)
            if params is None:
                return self._index.search(queries, k)
            return self._index.search(queries, k, params=params)

    def within(self, query: np.ndarray, min_score: float, among: np.ndarray | None = None,
               limit: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(ids, scores) of every vector scoring at least `min_score`, best first; optionally
        only among some ids, and only the best `limit`.

        Exact on the flat index; approximate on the IVF index (see `_params`).
        """
        query = np.ascontiguousarray(query, dtype=np.float32).reshape(1, self.dim)
        with self._lock:
            if not len(self):
                return np.empty(0, np.int64), np.empty(0, np.float32)
            params = self._params(among)
            # range search keeps scores strictly above the radius
            radius = np.nextafter(np.float32(min_score), np.float32(-np.inf))
            if params is None:
                _, scores, ids = self._index.range_search(query, float(radius))
            else:
                _, scores, ids = self._index.range_search(query, float(radius), params=params)
        order = np.lexsort((ids, -scores))
        if limit is not None:
            order = order[:limit]
        return ids[order].astype(np.int64), scores[order].astype(np.float32)

    def scores_of(self, query: np.ndarray, ids: np.ndarray) -> dict[int, float]:
        """The exact score of the query against each of these ids (ids not held are left out)."""
        query = np.ascontiguousarray(query, dtype=np.float32).reshape(self.dim)
        ids = np.unique(np.asarray(ids, dtype=np.int64))
        if not len(ids):
            return {}
        with self._lock:
            # one scan restricted to the ids, every IVF list included: exact, and ids not held
            # are simply not found
            params = self._params(ids, exhaustive=True)
            scores, found = self._index.search(query.reshape(1, self.dim), len(ids), params=params)
        return {int(i): float(s) for i, s in zip(found[0], scores[0], strict=True) if i >= 0}

    def reconstruct(self, vector_id: int) -> np.ndarray:
        with self._lock:
            return self._index.reconstruct(int(vector_id))

    # -- consistency with the database ----------------------------------------------------------
    def sync_with(self, db: Database) -> RepairReport:
        """Make the index hold exactly the database's vectors for this embedder."""
        from store import repo

        with self._lock:
            db_ids = repo.vector_ids(db, self.embedder)
            have = self.ids()
            rebuilt = False
            if len(have) != len(np.unique(have)):
                self._index, have, rebuilt = self._empty(), np.empty(0, np.int64), True
                self._trained_on = 0
            extra = np.setdiff1d(have, db_ids, assume_unique=True)
            missing = np.setdiff1d(db_ids, have, assume_unique=True)
            if len(extra):
                self.remove(extra)
            for chunk_start in range(0, len(missing), 10_000):
                chunk = missing[chunk_start : chunk_start + 10_000]
                ids, vectors = repo.load_vectors(db, chunk.tolist(), self.dim)
                self.add(ids, vectors)
            report = RepairReport(added=len(missing), removed=len(extra), rebuilt=rebuilt)
            if report.changed:
                log.info("vector index repaired from the database: %s", report)
            return report


def read_meta(path: Path) -> dict[str, object] | None:
    """The small JSON written beside an index file (embedder, dim, count), if readable."""
    try:
        return json.loads(path.with_suffix(path.suffix + ".json").read_text())
    except (OSError, ValueError):
        return None


def index_is_current(path: Path, db: Database, embedder: str,
                     exact_max: int | None = None) -> bool:
    """Whether the index file holds exactly the database's vectors of `embedder`, judged without
    reading the file or the ids: one count/max query and a stat, for runs that changed no vector.

    A save after `sync_with` records the count and highest id it holds, and the file's size.
    Vector ids are never reused (AUTOINCREMENT, sequences), so a vector added since has a
    higher id and a removal lowers the count: equal (count, max id) mean the same ids. The size
    catches a crash between writing the file and its metadata, and a truncated file. What this
    cannot see (a file damaged in place, same size) is repaired by the next `open_index`: the
    next search, or the next run that changes a vector.
    """
    from store import repo

    meta = read_meta(path)
    if not meta or meta.get("embedder") != embedder or "max_id" not in meta:
        return False
    try:
        if path.stat().st_size != meta.get("size"):
            return False
    except OSError:
        return False
    count = meta.get("count")
    if repo.vector_stamp(db, embedder) != (count, meta["max_id"]):
        return False
    trained_on = meta.get("trained_on") if meta.get("kind") == IVF else 0
    if not isinstance(count, int) or not isinstance(trained_on, int):
        return False
    return _refit(IVF if trained_on else FLAT, count, trained_on, exact_max) is None


def open_index(
    path: Path, db: Database, embedder: str, dim: int | Callable[[], int],
    exact_max: int | None = None,
) -> VectorIndex:
    """Load the index file, check it against the database, repair and save if they disagree.

    `dim` may be a callable (e.g. one that loads the embedding model); it is only called when
    the index file cannot tell the dimension itself. `exact_max`: see `VectorIndex`.
    """
    if callable(dim):
        meta = read_meta(path) or {}
        known = meta.get("dim") if meta.get("embedder") == embedder else None
        dim = int(known) if isinstance(known, int) else dim()
    index = VectorIndex(path, embedder, dim, exact_max)
    loaded = index.load()
    report = index.sync_with(db)
    # a file whose metadata lacks what `index_is_current` compares (saved without a database,
    # or by an older capdex) is saved once more, so later runs can skip opening it
    stamped = "max_id" in (read_meta(path) or {})
    if report.changed or not loaded or index.fit_to_size() or not stamped:
        index.save(db)
    return index
