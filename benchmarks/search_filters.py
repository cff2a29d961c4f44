"""Filtered semantic search: an IDSelector inside FAISS vs widening an unfiltered search.

Run by hand: `PYTHONPATH=. python benchmarks/search_filters.py [N]`. Prints milliseconds per
query and the ratio to an unfiltered exact search measured in the same run (lower is better),
for several filter selectivities, then exact vs IVF search at the same size.

Widening = search the top m unfiltered, drop what the filter refuses, double m until k survive
or every vector was looked at. IDSelector = `VectorIndex.within(..., among=ids)`, which hands
the filter's ids to FAISS so only those vectors are scored.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from capdex.store.vectors import VectorIndex

DIM, K, FLOOR, QUERIES = 384, 20, 0.3, 20


def clustered(rng: np.random.Generator, n: int, centres: int = 2_000, noise: float = 1.0) -> np.ndarray:
    middle = rng.standard_normal((centres, DIM)).astype(np.float32)
    middle /= np.linalg.norm(middle, axis=1, keepdims=True)
    points = middle[rng.integers(0, centres, n)]
    points += noise * rng.standard_normal((n, DIM)).astype(np.float32) / np.sqrt(DIM)
    return points / np.linalg.norm(points, axis=1, keepdims=True)


def timed(fn, queries) -> float:
    start = time.perf_counter()
    for query in queries:
        fn(query)
    return (time.perf_counter() - start) / len(queries) * 1000


def widening(index: VectorIndex, allowed: set[int]):
    def run(query: np.ndarray) -> list[int]:
        fetch = 4 * K
        while True:
            scores, ids = index.search(query, fetch)
            kept = [i for i, s in zip(ids[0], scores[0], strict=True) if i in allowed and s >= FLOOR]
            if len(kept) >= K or fetch >= len(index) or scores[0][-1] < FLOOR:
                return kept[:K]
            fetch *= 4
    return run


def main(n: int) -> None:
    rng = np.random.default_rng(0)
    vectors = clustered(rng, n + QUERIES)
    base, queries = vectors[:n], vectors[n:]
    ids = np.arange(1, n + 1, dtype=np.int64)
    with tempfile.TemporaryDirectory() as tmp:
        exact = VectorIndex(Path(tmp) / "e.faiss", "bench", DIM)
        exact.add(ids, base)
        baseline = timed(lambda q: exact.within(q, FLOOR), queries)
        print(f"{n} vectors, {DIM}-d; unfiltered exact search: {baseline:.2f} ms/query = 1.00")
        print(f"{'filter keeps':>13} {'IDSelector':>16} {'widening':>16}")
        for share in (0.001, 0.01, 0.1, 0.5):
            allowed = rng.choice(ids, max(1, int(n * share)), replace=False)
            allowed_set = set(allowed.tolist())
            selector = timed(lambda q, a=allowed: exact.within(q, FLOOR, among=a), queries)
            widen = timed(widening(exact, allowed_set), queries)
            print(f"{share:>13.1%} {selector:>8.2f} ({selector / baseline:4.2f}) "
                  f"{widen:>8.2f} ({widen / baseline:5.2f})")
        approx = VectorIndex(Path(tmp) / "a.faiss", "bench", DIM, exact_max=n // 2)
        approx.add(ids, base)
        started = time.perf_counter()
        approx.fit_to_size()
        built = time.perf_counter() - started
        top_exact = timed(lambda q: exact.search(q, 10), queries)
        top_ivf = timed(lambda q: approx.search(q, 10), queries)
        _, truth = exact.search(queries, 10)
        _, got = approx.search(queries, 10)
        recall = np.mean([len(set(t) & set(g)) / 10 for t, g in zip(truth, got, strict=True)])
        print(f"top-10: exact {top_exact:.2f} ms, IVF {top_ivf:.2f} ms "
              f"({top_ivf / top_exact:.2f} of exact), recall@10 {recall:.3f}, "
              f"IVF built in {built:.1f} s")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000)
