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

Three kinds, chosen by size (`VectorIndex.fit_to_size`): exact, IVF (approximate, floats in
RAM), and above `compress_above` IVF-PQ (`store.ivfpq`: ~72 bytes per vector instead of 1.5 KB,
memory-mappable). PQ scores are approximate, so the PQ kind re-scores its candidates exactly with
vectors read from a `VectorSource` (the database, see `db_source`): callers see exact scores
whatever the kind.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import numpy as np
from filelock import FileLock, Timeout

from capdex.atomic import atomic_write_bytes, atomic_write_with
from capdex.store import ivfpq
from capdex.store.ivfpq import VectorSource

if TYPE_CHECKING:
    from capdex.store.db import Database

log = logging.getLogger(__name__)

__all__ = ["RepairReport", "VectorIndex", "VectorRows", "db_source", "index_is_current",
           "open_index", "read_meta"]
#: How long a save waits for another process's save before giving up.
SAVE_LOCK_TIMEOUT = 300.0
#: How long a reader whose file fails its checksum waits for a save under way to finish.
RECHECK_LOCK_TIMEOUT = 10.0


def _faiss() -> ModuleType:
    import faiss

    return faiss


@dataclass(frozen=True)
class VectorRows:
    """The table an index caches: its ids of one model, their (count, highest id), and the
    vectors of some ids. The caption `vectors` table by default; `store.looks` has another."""

    ids: Callable[[Database, str], np.ndarray]
    stamp: Callable[[Database, str], tuple[int, int | None]]
    load: Callable[[Database, list[int], int], tuple[np.ndarray, np.ndarray]]


def caption_rows() -> VectorRows:
    """The `vectors` table (caption embeddings)."""
    from capdex.store import repo

    return VectorRows(repo.vector_ids, repo.vector_stamp, repo.load_vectors)


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
PQ = "ivfpq"
_RANK = {FLAT: 0, IVF: 1, PQ: 2}
#: `within` on the PQ kind asks the index for scores this much below the wanted one, then keeps
#: what scores high enough exactly: 1.0× how far PQ underrates 99.9% of vectors, measured when
#: the index is trained (`ivfpq.score_error`; ~0.2 on tests/store/test_vectors_pq.py's vectors).
PQ_SLACK_MARGIN = 1.0
#: ...or this, for a PQ file whose metadata lost the measured figure.
PQ_SLACK = 0.2
#: The PQ kind re-scores this many candidates per result asked for (and at least PQ_MIN_RERANK).
#: Near-duplicate captions score within a few hundredths of each other, less than PQ's error:
#: at 1M caption-like vectors (benchmarks/search_pq.py) 100 candidates gave recall@10 0.87,
#: 500 gave 1.00.
PQ_RERANK = 50
PQ_MIN_RERANK = 500
#: Vectors read from the source at a time (when rebuilding or re-scoring).
_SOURCE_CHUNK = 50_000
#: Fewer vectors than this are never compressed (too few to train 256 codes per sub-vector).
PQ_MIN_VECTORS = 1_000
_SQL_CHUNK = 5_000  # ids per SQL IN list
_NO_SCORE = np.float32(-np.finfo(np.float32).max)  # what FAISS reports for an empty slot


def _kind_for(size: int, exact_max: int | None, compress_above: int | None,
              has_source: bool) -> str:
    """The kind `size` vectors call for."""
    # PQ needs a source to score exactly, and enough vectors to train 256 codes per part
    if (compress_above is not None and size > compress_above and has_source
            and size >= PQ_MIN_VECTORS):
        return PQ
    if exact_max is not None and size > exact_max:
        return IVF
    return FLAT


def _refit(kind: str, size: int, trained_on: int, exact_max: int | None,
           compress_above: int | None, has_source: bool) -> str | None:
    """The kind an index of `size` vectors should become (None: stay as it is); see
    `VectorIndex.fit_to_size`."""
    if exact_max is None and compress_above is None:
        return None
    grown = _kind_for(size, exact_max, compress_above, has_source)
    shrunk = _kind_for(2 * size + 1, exact_max, compress_above, has_source)
    if _RANK[grown] > _RANK[kind] or _RANK[shrunk] < _RANK[kind]:
        return grown
    if kind != FLAT and (size > 4 * trained_on or size < trained_on // 4):
        return kind
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
    from the vectors held; above `compress_above` an `IndexIVFPQ` (`store.ivfpq`) whose
    candidates are re-scored exactly with vectors from `source`. The approximate kinds are
    rebuilt when the size moves far from what they were trained on. `exact_max=None` and
    `compress_above=None` keep the index exact whatever its size. With `mmap`, an IVF or PQ
    file is loaded memory-mapped (read-only pages shared between processes; copied into RAM
    at the first change).
    """

    def __init__(self, path: Path, embedder: str, dim: int, exact_max: int | None = None, *,
                 compress_above: int | None = None, source: VectorSource | None = None,
                 mmap: bool = False, rows: VectorRows | None = None) -> None:
        self.path = path
        self.rows = rows or caption_rows()
        self.embedder = embedder
        self.dim = dim
        self.exact_max = exact_max
        self.compress_above = compress_above
        self.source = source
        self.mmap = mmap
        self._lock = threading.RLock()
        self._index = self._empty()
        self._kind = FLAT
        self._trained_on = 0  # vectors the IVF or PQ index was trained on (0: exact index)
        self._slack = PQ_SLACK  # see PQ_SLACK_MARGIN
        self._loaded_stamp: tuple[int, int, int] | None = None

    def like(self) -> VectorIndex:
        """An empty index with this one's file and configuration (to load a newer save into)."""
        return VectorIndex(self.path, self.embedder, self.dim, self.exact_max,
                           compress_above=self.compress_above, source=self.source, mmap=self.mmap,
                           rows=self.rows)

    # -- construction -------------------------------------------------------------------------
    def _empty(self) -> Any:
        faiss = _faiss()
        return faiss.IndexIDMap2(faiss.IndexFlatIP(self.dim))

    @property
    def kind(self) -> str:
        """"flat" (exact), "ivf" (approximate) or "ivfpq" (compressed, re-scored exactly)."""
        return self._kind

    def _build_ivf(self, ids: np.ndarray, vectors: np.ndarray) -> Any:
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

    def _build_pq(self, ids: np.ndarray, read: VectorSource) -> Any:
        """An IVF-PQ index of these ids' vectors, `read` a chunk at a time (never all at once);
        sets the slack `within` needs from the error measured on the training sample."""
        rng = np.random.default_rng(0)
        sample_ids = rng.choice(ids, ivfpq.training_size(len(ids), self.dim), replace=False)
        _, sample = read(np.sort(sample_ids).tolist())
        chunks = (read(ids[i : i + _SOURCE_CHUNK].tolist())
                  for i in range(0, len(ids), _SOURCE_CHUNK))
        index = ivfpq.build_ivfpq(len(ids), sample, chunks)
        rng.shuffle(sample)
        self._slack = PQ_SLACK_MARGIN * ivfpq.score_error(index, sample)
        return index

    def _contents(self) -> tuple[np.ndarray, np.ndarray]:
        """Every id and vector held (ids, matrix): from FAISS's storage, or for the PQ kind
        (whose codes are lossy) from the vector source."""
        faiss = _faiss()
        if self._kind == FLAT:
            ids = faiss.vector_to_array(self._index.id_map).astype(np.int64)
            return ids, self._index.index.reconstruct_n(0, len(ids))
        if self._kind == PQ:
            return self._vectors(self.ids())
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

    def _kind_for(self, size: int) -> str:
        """The kind `size` vectors call for."""
        return _kind_for(size, self.exact_max, self.compress_above, self.source is not None)

    def fit_to_size(self) -> bool:
        """Switch kind when the size calls for it; True if the index was rebuilt.

        Up a kind as soon as the size passes its threshold (`exact_max`, `compress_above`);
        down only below half of it, so a size near a threshold does not rebuild on every save.
        An IVF or PQ index is retrained when it has grown to 4× (or shrunk to ¼ of) what it
        was trained on.
        """
        with self._lock:
            size, kind = len(self), self._kind
            wanted = _refit(kind, size, self._trained_on, self.exact_max, self.compress_above,
                            self.source is not None)
            if wanted is None:
                return False
            if kind == PQ and self.source is None:
                log.warning("vector index: %d vectors call for a %s index, but rebuilding the "
                            "compressed index needs the stored vectors; left as it is",
                            size, wanted)
                return False
            log.info("vector index: %d vectors, building a %s index", size, wanted)
            if wanted == PQ:
                if kind == PQ and self.source is not None:  # without a source, returned above
                    ids, read = self.ids(), self.source
                else:
                    ids, vectors = self._contents()
                    read = _reader(ids, vectors)
                index = self._build_pq(ids, read)
            else:
                ids, vectors = self._contents()
                if wanted == IVF:
                    index = self._build_ivf(ids, vectors)
                else:
                    index = self._empty()
                    index.add_with_ids(vectors, ids)
            self._index, self._kind = index, wanted
            self._trained_on = 0 if wanted == FLAT else int(index.ntotal)
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
                stamp = self._stamp()
                if not _checksum_matches(self.path, meta):
                    meta, stamp = self._recheck()
                if meta is None:
                    log.warning("vector index %s is damaged (its checksum differs from the one "
                                "saved with it); it will be rebuilt from the database", self.path)
                    return False
                index = self._read_file()
                # the file, not the metadata, says which kind it is (a crash may part them)
                kind = _kind_of(index)
                trained_on = 0 if kind == FLAT \
                    else int(meta.get("trained_on") or index.ntotal) or 1
                slack = float(meta.get("slack") or PQ_SLACK) if meta.get("kind") == PQ \
                    else PQ_SLACK
            except FileNotFoundError:
                return False
            except Exception as exc:  # noqa: BLE001 - any unreadable file is rebuilt
                log.warning("vector index %s is unreadable (%s); it will be rebuilt", self.path, exc)
                return False
            if index.d != self.dim:
                return False
            if kind == PQ and self.source is None:
                log.warning("compressed vector index loaded without stored vectors: its scores "
                            "are approximate")
            self._index, self._kind, self._trained_on = index, kind, trained_on
            self._slack = slack
            # the file checked: one replaced since is seen as changed on disk, and read again
            self._loaded_stamp = stamp
            return True

    def _recheck(self) -> tuple[dict | None, tuple[int, int, int] | None]:
        """The metadata and stamp of a file that matches its checksum once no save is under
        way (a save renames the file into place, then writes its metadata); (None, None) if it
        still does not: the file is damaged."""
        try:
            with FileLock(str(self.lock_path), timeout=RECHECK_LOCK_TIMEOUT):
                meta = json.loads(self.meta_path.read_text())
                stamp = self._stamp()
                if meta.get("embedder") == self.embedder and meta.get("dim") == self.dim \
                        and _checksum_matches(self.path, meta):
                    return meta, stamp
        except Timeout:
            pass
        return None, None

    def _read_file(self) -> Any:
        faiss = _faiss()
        # already of its concrete type; with IO_FLAG_MMAP an IVF file's lists stay on disk
        return faiss.read_index(str(self.path), faiss.IO_FLAG_MMAP if self.mmap else 0)

    def _writable(self) -> None:
        """Copy memory-mapped lists into RAM before a change: FAISS maps them read-only."""
        if self._kind != FLAT and ivfpq.is_mapped(self._index):
            ivfpq.in_memory(self._index)

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
        (tests, tools with no database) the in-memory contents are written as they are. With
        `mmap`, an IVF or PQ index is mapped again from the file written.
        """
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(self.lock_path), timeout=SAVE_LOCK_TIMEOUT), self._lock:
            if db is not None:
                self.sync_with(db)
            self.fit_to_size()
            self._writable()  # a mapped index would serialise a reference to its file
            # straight to disk: no serialised copy of the index in memory (1.5 GB at 1M flat)
            faiss, index = _faiss(), self._index
            atomic_write_with(self.path, lambda tmp: faiss.write_index(index, tmp))
            meta: dict[str, object] = {"embedder": self.embedder, "dim": self.dim,
                                       "count": int(self._index.ntotal),
                                       "sha256": file_checksum(self.path)}
            if self._kind != FLAT:
                meta.update(kind=self._kind, trained_on=self._trained_on)
            if self._kind == PQ:
                meta.update(slack=round(self._slack, 4))
            if db is not None:  # the file holds exactly the database's vectors: say which
                ids = self.ids()
                meta.update(max_id=int(ids.max()) if len(ids) else None,
                            size=self.path.stat().st_size)
            atomic_write_bytes(self.meta_path, json.dumps(meta).encode())
            self._loaded_stamp = self._stamp()
            if self.mmap and self._kind != FLAT:
                self._index = self._read_file()

    # -- contents -----------------------------------------------------------------------------
    def __len__(self) -> int:
        return int(self._index.ntotal)

    def ids(self) -> np.ndarray:
        faiss = _faiss()
        with self._lock:
            if self._kind == FLAT:
                return faiss.vector_to_array(self._index.id_map).astype(np.int64)
            lists = self._index.invlists
            parts = [faiss.rev_swig_ptr(lists.get_ids(i), lists.list_size(i)).copy()
                     for i in range(self._index.nlist) if lists.list_size(i)]
            return np.concatenate(parts).astype(np.int64) if parts else np.empty(0, np.int64)

    def _remove(self, ids: np.ndarray) -> int:
        faiss = _faiss()
        self._writable()
        if self._kind == FLAT:
            return int(self._index.remove_ids(ids))
        if self._kind == IVF:  # the IVF id hashtable removes only by an explicit id array
            return int(self._index.remove_ids(faiss.IDSelectorArray(ids)))
        # PQ keeps no id map: every list is scanned, so test membership in a hash set
        return int(self._index.remove_ids(faiss.IDSelectorBatch(ids)))

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

    # -- exact vectors for the PQ kind ----------------------------------------------------------
    @property
    def _rescored(self) -> bool:
        """True when scores come from the source, not from the index (PQ with a source)."""
        return self._kind == PQ and self.source is not None

    def _vectors(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(ids, matrix) of these ids' stored vectors, from the source (those it has)."""
        if self.source is None:
            raise RuntimeError("the compressed vector index needs a vector source for this")
        if not len(ids):
            return np.empty(0, np.int64), np.empty((0, self.dim), np.float32)
        found, matrix = self.source(np.asarray(ids, dtype=np.int64).tolist())
        return np.asarray(found, dtype=np.int64), np.asarray(matrix, dtype=np.float32)

    def _rerank(self, queries: np.ndarray, candidates: np.ndarray,
                k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-k (scores, ids) per query among its candidate ids, by exact score."""
        found, matrix = self._vectors(np.unique(candidates[candidates >= 0]))
        row_of = {int(i): r for r, i in enumerate(found.tolist())}
        scores = np.full((len(queries), k), _NO_SCORE, dtype=np.float32)
        ids = np.full((len(queries), k), -1, dtype=np.int64)
        for q, (query, row_ids) in enumerate(zip(queries, candidates, strict=True)):
            keep = np.array([i for i in row_ids.tolist() if i in row_of], dtype=np.int64)
            if not len(keep):
                continue
            exact = matrix[[row_of[i] for i in keep.tolist()]] @ query
            order = np.lexsort((keep, -exact))[:k]
            scores[q, : len(order)], ids[q, : len(order)] = exact[order], keep[order]
        return scores, ids

    # -- search -------------------------------------------------------------------------------
    def _params(self, among: np.ndarray | None, exhaustive: bool = False) -> Any:
        """Search parameters restricting results to the ids `among` (None: all).

        On the IVF and PQ indexes a small enough `among` (or any, if `exhaustive`) is searched
        in every list: the probed lists might hold few of its ids, and skipping the others
        costs little.
        """
        faiss = _faiss()
        small = self.exact_max if self.exact_max is not None else self.compress_above
        exhaustive = exhaustive or (among is not None and small is not None
                                    and len(among) <= small)
        selector = faiss.IDSelectorBatch(np.ascontiguousarray(among, dtype=np.int64)) \
            if among is not None else None
        if self._kind == FLAT:
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
        have id -1. The PQ kind takes PQ_RERANK·k candidates and orders them by exact score."""
        queries = np.ascontiguousarray(queries, dtype=np.float32).reshape(-1, self.dim)
        with self._lock:
            k = max(1, min(k, len(self))) if len(self) else 1
            fetch = min(len(self), max(k * PQ_RERANK, PQ_MIN_RERANK)) if self._rescored else k
            params = self._params(among)
            if params is None:
                scores, ids = self._index.search(queries, max(1, fetch))
            else:
                scores, ids = self._index.search(queries, max(1, fetch), params=params)
            if not self._rescored:
                return scores, ids
        return self._rerank(queries, ids, k)

    def within(self, query: np.ndarray, min_score: float, among: np.ndarray | None = None,
               limit: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(ids, scores) of every vector scoring at least `min_score`, best first; optionally
        only among some ids, and only the best `limit`.

        Exact on the flat index; approximate on the IVF index (see `_params`). The PQ kind
        searches a little below `min_score` (PQ_SLACK_MARGIN), then keeps (and scores) what
        scores high enough exactly; with `limit`, only the best PQ_RERANK·limit by PQ score
        are re-scored.
        """
        query = np.ascontiguousarray(query, dtype=np.float32).reshape(1, self.dim)
        with self._lock:
            if not len(self):
                return np.empty(0, np.int64), np.empty(0, np.float32)
            rescored = self._rescored
            params = self._params(among)
            # range search keeps scores strictly above the radius
            lowest = min_score - self._slack if rescored else min_score
            radius = float(np.nextafter(np.float32(lowest), np.float32(-np.inf)))
            if params is None:
                _, scores, ids = self._index.range_search(query, radius)
            else:
                _, scores, ids = self._index.range_search(query, radius, params=params)
        if rescored:
            wanted = max(PQ_RERANK * limit, PQ_MIN_RERANK) if limit is not None else len(ids)
            if len(ids) > wanted:  # as `search` does: the best by PQ score are re-scored
                ids = ids[np.argpartition(-scores, wanted)[:wanted]]
            ids, matrix = self._vectors(ids)
            scores = matrix @ query[0]
            keep = scores >= np.float32(min_score)
            ids, scores = ids[keep], scores[keep]
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
            rescored = self._rescored
        if rescored:  # the PQ scan says which are held; their stored vectors say the score
            held, matrix = self._vectors(found[0][found[0] >= 0])
            return {int(i): float(s) for i, s in zip(held, matrix @ query, strict=True)}
        return {int(i): float(s) for i, s in zip(found[0], scores[0], strict=True) if i >= 0}

    def reconstruct(self, vector_id: int) -> np.ndarray:
        """The stored vector with this id (for the PQ kind, read from the source)."""
        with self._lock:
            if self._kind != PQ:
                return self._index.reconstruct(int(vector_id))
        found, matrix = self._vectors(np.array([vector_id], dtype=np.int64))
        if not len(found):
            raise KeyError(f"no vector {vector_id}")
        return matrix[0]

    # -- consistency with the database ----------------------------------------------------------
    def sync_with(self, db: Database) -> RepairReport:
        """Make the index hold exactly the database's vectors for this embedder."""
        with self._lock:
            db_ids = self.rows.ids(db, self.embedder)
            have = self.ids()
            rebuilt = False
            if len(have) != len(np.unique(have)):
                self._index, have, rebuilt = self._empty(), np.empty(0, np.int64), True
                self._kind, self._trained_on = FLAT, 0
            extra = np.setdiff1d(have, db_ids, assume_unique=True)
            missing = np.setdiff1d(db_ids, have, assume_unique=True)
            if len(extra):
                self.remove(extra)
            for chunk_start in range(0, len(missing), 10_000):
                chunk = missing[chunk_start : chunk_start + 10_000]
                ids, vectors = self.rows.load(db, chunk.tolist(), self.dim)
                self.add(ids, vectors)
            report = RepairReport(added=len(missing), removed=len(extra), rebuilt=rebuilt)
            if report.changed:
                log.info("vector index repaired from the database: %s", report)
            return report


def _kind_of(index: Any) -> str:
    """The kind of a FAISS index read from a file."""
    faiss = _faiss()
    if isinstance(index, faiss.IndexIDMap2):
        return FLAT
    if isinstance(index, faiss.IndexIVFPQ):
        return PQ
    if isinstance(index, faiss.IndexIVFFlat):
        return IVF
    raise ValueError(f"unexpected index type {type(index).__name__}")


def _reader(ids: np.ndarray, vectors: np.ndarray) -> VectorSource:
    """A vector source over an in-memory (ids, matrix)."""
    order = np.argsort(ids)
    sorted_ids = ids[order]

    def read(wanted: list[int]) -> tuple[np.ndarray, np.ndarray]:
        wanted_ids = np.asarray(wanted, dtype=np.int64)
        return wanted_ids, vectors[order[np.searchsorted(sorted_ids, wanted_ids)]]

    return read


def db_source(db: Database, dim: int, rows: VectorRows | None = None) -> VectorSource:
    """A vector source reading the `vectors` table, or `rows` (a few thousand ids per query)."""
    load = (rows or caption_rows()).load

    def read(ids: list[int]) -> tuple[np.ndarray, np.ndarray]:
        parts = [load(db, ids[i : i + _SQL_CHUNK], dim)
                 for i in range(0, len(ids), _SQL_CHUNK)]
        if not parts:
            return np.empty(0, np.int64), np.empty((0, dim), np.float32)
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])

    return read


def file_checksum(path: Path) -> str:
    """SHA-256 of the index file, recorded by every save and checked by every load (issue 20,
    point 4: a file damaged in place, same size, was never repaired)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 23):
            digest.update(chunk)
    return digest.hexdigest()


def _checksum_matches(path: Path, meta: dict[str, object]) -> bool:
    """The file holds the bytes its metadata's checksum names (a file saved before checksums
    were recorded has none to check; its next save records one)."""
    expected = meta.get("sha256")
    return expected is None or file_checksum(path) == expected


def read_meta(path: Path) -> dict[str, Any] | None:
    """The small JSON written beside an index file (embedder, dim, count), if readable."""
    try:
        return json.loads(path.with_suffix(path.suffix + ".json").read_text())
    except (OSError, ValueError):
        return None


def index_is_current(path: Path, db: Database, embedder: str,
                     exact_max: int | None = None, compress_above: int | None = None,
                     rows: VectorRows | None = None) -> bool:
    """Whether the index file holds exactly the database's vectors of `embedder`, judged without
    reading the file or the ids: one count/max query and a stat, for runs that changed no vector.

    A save after `sync_with` records the count and highest id it holds, and the file's size.
    Vector ids are never reused (AUTOINCREMENT, sequences), so a vector added since has a
    higher id and a removal lowers the count: equal (count, max id) mean the same ids. The size
    catches a crash between writing the file and its metadata, and a truncated file. What this
    cannot see (a file damaged in place, same size) is caught by the checksum the next
    `open_index` verifies, and rebuilt: the next search, or the next run that changes a vector.
    """
    meta = read_meta(path)
    if not meta or meta.get("embedder") != embedder or "max_id" not in meta:
        return False
    try:
        if path.stat().st_size != meta.get("size"):
            return False
    except OSError:
        return False
    count = meta.get("count")
    if (rows or caption_rows()).stamp(db, embedder) != (count, meta["max_id"]):
        return False
    kind = meta.get("kind", FLAT)
    trained_on = meta.get("trained_on") if kind != FLAT else 0
    if kind not in _RANK or not isinstance(count, int) or not isinstance(trained_on, int):
        return False
    # `open_index` always gives the index the database as its source
    return _refit(str(kind), count, trained_on, exact_max, compress_above, True) is None


def open_index(
    path: Path, db: Database, embedder: str, dim: int | Callable[[], int],
    exact_max: int | None = None, *, compress_above: int | None = None, mmap: bool = False,
    rows: VectorRows | None = None,
) -> VectorIndex:
    """Load the index file, check it against the database, repair and save if they disagree.

    `dim` may be a callable (e.g. one that loads the embedding model); it is only called when
    the index file cannot tell the dimension itself. `exact_max`, `compress_above` and `mmap`:
    see `VectorIndex` (searchers that rarely write pass `mmap=True`). The database is the
    vector source the compressed kind re-scores with. `rows`: the table cached (default: the
    caption vectors).
    """
    if callable(dim):
        meta = read_meta(path) or {}
        known = meta.get("dim") if meta.get("embedder") == embedder else None
        dim = int(known) if isinstance(known, int) else dim()
    index = VectorIndex(path, embedder, dim, exact_max, compress_above=compress_above,
                        source=db_source(db, dim, rows), mmap=mmap, rows=rows)
    loaded = index.load()
    report = index.sync_with(db)
    # a file whose metadata lacks what `index_is_current` compares (saved without a database,
    # or by an older capdex) is saved once more, so later runs can skip opening it
    meta = read_meta(path) or {}
    stamped = "max_id" in meta and "sha256" in meta
    if report.changed or not loaded or index.fit_to_size() or not stamped:
        index.save(db)
    return index
