"""A compressed FAISS index for millions of photos: IVF-PQ, memory-mappable, re-ranked exactly.

The flat index keeps 4 bytes per dimension per photo (1.5 KB for MiniLM's 384); at millions of
photos that is gigabytes of RAM per search process. IVF-PQ keeps `m` one-byte codes plus the
8-byte id per photo (64 + 8 = 72 bytes for 384 dimensions), trained on a sample of the vectors.
A query visits the `nprobe` nearest of `nlist` cells; `tune_nprobe` picks the smallest `nprobe`
that finds what visiting every cell finds. PQ scores are approximate, so `search` can take more
candidates and re-score them exactly with vectors from a `rerank` source (the database holds
every vector anyway), keeping the index small and the ranking right.

The file written by `save` is read back memory-mapped (`faiss.IO_FLAG_MMAP`): the codes stay in
the page cache, shared by every process that searches.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from capdex.atomic import atomic_write_with

#: Vectors (ids, float32 matrix) for ids, e.g. `lambda ids: repo.load_vectors(db, ids, dim)`.
VectorSource = Callable[[list[int]], tuple[np.ndarray, np.ndarray]]


def _faiss() -> ModuleType:
    import faiss

    return faiss


@dataclass(frozen=True)
class PQLayout:
    """The shape of an IVF-PQ index: cells, sub-quantizers and bits per code."""

    dim: int
    nlist: int
    m: int
    nbits: int = 8

    @property
    def bytes_per_vector(self) -> int:
        """Memory per stored vector: its PQ code and its 64-bit id."""
        return self.m * self.nbits // 8 + 8

    @classmethod
    def for_size(cls, count: int, dim: int, max_bytes: int = 100) -> PQLayout:
        """A layout for about `count` vectors: ~4·√n cells (at least 39 training points each,
        as FAISS asks) and the most sub-quantizers that divide `dim` and fit in `max_bytes`."""
        nlist = max(1, int(min(65536, 4 * math.sqrt(count), count // 39)))
        fitting = [m for m in range(1, dim + 1) if dim % m == 0 and m + 8 < max_bytes and m <= 64]
        if not fitting:
            raise ValueError(f"no PQ layout for {dim} dimensions under {max_bytes} bytes")
        return cls(dim=dim, nlist=nlist, m=max(fitting))


def train_ivfpq(layout: PQLayout, sample: np.ndarray) -> Any:
    """An empty `faiss.IndexIVFPQ` (inner product) with cells and codebooks trained on `sample`.

    No id → list map: a hash table would cost ~30 more bytes per photo. Removal scans the
    lists instead, which is fine for the batches an index run removes.
    """
    faiss = _faiss()
    sample = np.ascontiguousarray(sample, dtype=np.float32)
    index = faiss.IndexIVFPQ(faiss.IndexFlatIP(layout.dim), layout.dim, layout.nlist, layout.m,
                             layout.nbits, faiss.METRIC_INNER_PRODUCT)
    index.cp.spherical = True  # cells on the unit sphere, like the vectors
    index.cp.niter = 10
    # 10 rounds, not 25: codebook training is most of the build time, and the exact
    # re-ranking (`VectorIndex`) makes up the little precision it costs
    index.pq.cp.niter = 10
    index.train(sample)
    return index


def score_error(index: Any, sample: np.ndarray, quantile: float = 0.999) -> float:
    """How far below the exact score the index may score a vector near the query: the
    `quantile` of x·(x − x̂) over sample vectors x (x̂: x as its code decodes, which is what a
    PQ score is measured against). A query equal to the vector is the worst case: PQ pulls
    residuals toward their centroids, so it underrates the nearest vectors most."""
    sample = np.ascontiguousarray(sample[:2000], dtype=np.float32)
    if not len(sample):
        return 0.0
    decoded = index.sa_decode(index.sa_encode(sample))
    return float(np.quantile(np.einsum("nd,nd->n", sample, sample - decoded), quantile))


def build_ivfpq(count: int, sample: np.ndarray,
                chunks: Iterable[tuple[np.ndarray, np.ndarray]]) -> Any:
    """A trained, filled IVF-PQ index for about `count` vectors: trained on `sample` (rows of
    the vectors, see `training_size`), then filled from `chunks` of (ids, vectors), so that
    millions of vectors never need to be in memory at once. nprobe as `probes_for`."""
    layout = PQLayout.for_size(count, sample.shape[1])
    index = train_ivfpq(layout, sample)
    for ids, vectors in chunks:
        if len(ids):
            index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32),
                               np.ascontiguousarray(ids, dtype=np.int64))
    index.nprobe = probes_for(layout.nlist)
    return index


def training_size(count: int, dim: int) -> int:
    """How many of `count` vectors to train on: 50 per cell (FAISS asks for 39), and at least
    enough for the 256 centroids of each sub-quantizer."""
    return min(count, max(50 * PQLayout.for_size(count, dim).nlist, 256 * 50))


def probes_for(nlist: int) -> int:
    """Cells visited per query: a tenth, as for the IVF index (`store.vectors.ivf_shape`); the
    exact re-ranking then orders what they hold (recall@10 in tests/store/test_vectors_pq.py)."""
    return max(8, min(nlist, nlist // 10))


def in_memory(index: Any) -> None:
    """Copy a memory-mapped IVF index's lists into RAM, in place, so it can be changed.

    FAISS maps the lists read-only (`OnDiskInvertedLists`): adding or removing raises, and
    serialising writes a reference to the mapped file rather than the codes.
    """
    faiss = _faiss()
    ivf = faiss.extract_index_ivf(index)
    mapped = ivf.invlists
    if isinstance(faiss.downcast_InvertedLists(mapped), faiss.ArrayInvertedLists):
        return
    copy = faiss.ArrayInvertedLists(ivf.nlist, ivf.code_size)
    for i in range(ivf.nlist):
        size = mapped.list_size(i)
        if size:
            copy.add_entries(i, size, mapped.get_ids(i), mapped.get_codes(i))
    ivf.replace_invlists(copy, True)  # the index owns (and frees) the copy, unmaps the old
    copy.this.disown()


def is_mapped(index: Any) -> bool:
    """True when the index's lists are memory-mapped from its file (read-only)."""
    faiss = _faiss()
    lists = faiss.downcast_InvertedLists(faiss.extract_index_ivf(index).invlists)
    return isinstance(lists, faiss.OnDiskInvertedLists)


class PQIndex:
    """IVF-PQ inner-product index keyed by vector row ids (as `VectorIndex` is)."""

    def __init__(self, index: Any) -> None:
        self._index = index
        self._ivf = _faiss().extract_index_ivf(index)

    @classmethod
    def train(cls, layout: PQLayout, sample: np.ndarray) -> PQIndex:
        """An empty index whose cells and codebooks are trained on `sample` (normalised rows;
        a few hundred thousand are plenty for millions of photos)."""
        if len(sample) < layout.nlist * 39 and len(sample) < 2 ** layout.nbits * 39:
            raise ValueError(f"{len(sample)} training vectors are too few for {layout}")
        return cls(train_ivfpq(layout, sample))

    @property
    def layout(self) -> PQLayout:
        return PQLayout(dim=self._index.d, nlist=self._ivf.nlist, m=self._ivf.pq.M,
                        nbits=self._ivf.pq.nbits)

    @property
    def nprobe(self) -> int:
        return int(self._ivf.nprobe)

    @nprobe.setter
    def nprobe(self, value: int) -> None:
        self._ivf.nprobe = max(1, min(int(value), self._ivf.nlist))

    def __len__(self) -> int:
        return int(self._index.ntotal)

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        self._index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), ids)

    def remove(self, ids: np.ndarray | list[int]) -> int:
        return int(self._index.remove_ids(np.ascontiguousarray(ids, dtype=np.int64)))

    def search(self, queries: np.ndarray, k: int, *, rerank: VectorSource | None = None,
               candidates: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """Top-k (scores, ids) per query row (-1 ids where fewer exist). With `rerank`, the best
        `candidates`·k by PQ score are re-scored exactly with the vectors it returns."""
        queries = np.ascontiguousarray(queries, dtype=np.float32).reshape(-1, self._index.d)
        if rerank is None:
            return self._index.search(queries, k)
        _, ids = self._index.search(queries, k * candidates)
        wanted = np.unique(ids[ids >= 0])
        found_ids, matrix = rerank(wanted.tolist()) if len(wanted) else (wanted, np.empty((0, 0), np.float32))
        row_of = {int(i): r for r, i in enumerate(found_ids)}
        out_scores = np.full((len(queries), k), -np.inf, dtype=np.float32)
        out_ids = np.full((len(queries), k), -1, dtype=np.int64)
        for q, (query, row_ids) in enumerate(zip(queries, ids, strict=True)):
            keep = [int(i) for i in row_ids if i >= 0 and int(i) in row_of]
            if not keep:
                continue
            exact = matrix[[row_of[i] for i in keep]] @ query
            order = np.argsort(-exact)[:k]
            out_scores[q, : len(order)] = exact[order]
            out_ids[q, : len(order)] = np.array(keep)[order]
        return out_scores, out_ids

    def tune_nprobe(self, queries: np.ndarray, k: int = 10, target: float = 0.95) -> int:
        """Set and return the smallest nprobe whose top-k overlaps `target` of what visiting
        every cell returns (the best this index's codes can do) for these sample queries."""
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        self.nprobe = self._ivf.nlist
        _, best = self._index.search(queries, k)
        nprobe = 1
        while True:
            self.nprobe = nprobe
            _, found = self._index.search(queries, k)
            overlap = np.mean([len(set(a[a >= 0]) & set(b[b >= 0])) / max(1, (b >= 0).sum())
                               for a, b in zip(found, best, strict=True)])
            if overlap >= target or nprobe >= self._ivf.nlist:
                return self.nprobe
            nprobe *= 2

    # -- files ------------------------------------------------------------------------------------
    def stored_bytes_per_vector(self) -> float:
        """Measured: bytes the serialised index (= its RAM or mmap footprint) grows by per
        vector, over the fixed cost of its trained cells and codebooks."""
        faiss = _faiss()
        empty = faiss.clone_index(self._index)
        empty.reset()
        fixed = faiss.serialize_index(empty).size
        return (faiss.serialize_index(self._index).size - fixed) / max(1, len(self))

    def save(self, path: Path) -> None:
        """Write atomically (temp file, fsync, rename)."""
        faiss, index = _faiss(), self._index
        atomic_write_with(path, lambda tmp: faiss.write_index(index, os.fspath(tmp)))

    @classmethod
    def load(cls, path: Path, *, mmap: bool = True) -> PQIndex:
        """Read `path`; with `mmap` the codes are memory-mapped, not copied into RAM."""
        faiss = _faiss()
        flags = faiss.IO_FLAG_MMAP if mmap else 0
        return cls(faiss.read_index(os.fspath(path), flags))
