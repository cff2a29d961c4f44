"""Benchmarks 4 and 5 (server side): search latency at 100k and 1M caption vectors, and the peak
memory of a process holding the index and the embedder.

Vectors are synthetic but caption-like: real MiniLM embeddings of templated captions, each
copied with noise (cosine ~0.8 to its source) and normalised, so the index has the clustered
shape of a real library. Each query is a fresh text embedded by the real embedder (no cache),
then searched for the top 10; latency includes the embedding. The baseline in the same run is
NumPy brute force (matrix product + argpartition) with the same query embedding. Recall@10 is
against exact search. It measures `store.vectors.VectorIndex` as capdex builds it (exact up to
`CAPDEX_EXACT_SEARCH_MAX` vectors, IVF above); benchmarks/search_latency.py measures whole
searches through the engine and the database.

    PYTHONPATH=. python benchmarks/search_scale.py [SIZES...]      (default 100000 1000000)
"""

from __future__ import annotations

import itertools
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks.machine import describe

WORK = Path(__file__).parent / "_work"
ROOT = Path(__file__).resolve().parent.parent
COLOURS = "red blue green yellow black white brown grey orange pink".split()
THINGS = "dog cat man woman child car boat bird horse bicycle house tree flower cake".split()
PLACES = "beach street park kitchen forest field lake snow garden road city".split()
QUERIES = 200


def captions() -> list[str]:
    return [f"a {c} {t} on the {p}" for c, t, p in itertools.product(COLOURS, THINGS, PLACES)]


def queries() -> list[str]:
    rng = np.random.default_rng(7)
    return [f"{rng.choice(COLOURS)} {rng.choice(THINGS)} near a {rng.choice(PLACES)} #{i}"
            for i in range(QUERIES)]


def make_vectors(embedder, count: int) -> np.ndarray:
    base = embedder.embed(captions())
    rng = np.random.default_rng(0)
    out = np.empty((count, base.shape[1]), dtype=np.float32)
    for start in range(0, count, 100_000):
        n = min(100_000, count - start)
        rows = base[rng.integers(0, len(base), n)] + rng.normal(0, 0.04, (n, base.shape[1]))
        out[start : start + n] = rows / np.linalg.norm(rows, axis=1, keepdims=True)
    return out


def percentiles(times: list[float]) -> tuple[float, float]:
    return float(np.percentile(times, 50) * 1000), float(np.percentile(times, 99) * 1000)


def bench(size: int) -> None:
    from capdex.embedder import Embedder
    from capdex.store.vectors import VectorIndex

    embedder = Embedder("all-MiniLM-L6-v2")
    vectors = make_vectors(embedder, size)
    from capdex.settings import Settings

    # as capdex builds it: exact up to `exact_search_max` vectors, IVF above
    index = VectorIndex(WORK / f"search-{size}.faiss", embedder.name, vectors.shape[1],
                        Settings().exact_search_max)
    index.add(np.arange(size), vectors)
    started = time.perf_counter()
    index.fit_to_size()
    print(f"  {index.kind} index, built in {time.perf_counter() - started:.1f} s", flush=True)
    texts = queries()
    embedder.embed(texts[:5])  # warm up
    exact, found, ours, numpy_times = [], [], [], []
    # One side after the other: interleaved, the baseline's pass over every vector would evict
    # the index and the embedder from the caches before each of capdex's queries.
    for text in texts:
        start = time.perf_counter()
        q = embedder.embed([text])
        _, ids = index.search(q, 10)
        ours.append(time.perf_counter() - start)
        found.append(set(ids[0].tolist()))
    for text in texts:
        start = time.perf_counter()
        q = embedder.embed([text])
        scores = vectors @ q[0]
        top = np.argpartition(-scores, 10)[:10]
        top = top[np.argsort(-scores[top])]
        numpy_times.append(time.perf_counter() - start)
        exact.append(set(top.tolist()))
    recall = np.mean([len(a & b) / 10 for a, b in zip(found, exact, strict=True)])
    p50, p99 = percentiles(ours)
    b50, b99 = percentiles(numpy_times)
    embed_only = []
    for text in texts[:50]:
        start = time.perf_counter()
        embedder.embed([text + " again"])
        embed_only.append(time.perf_counter() - start)
    e50, _ = percentiles(embed_only)
    print(f"{size:>9,} vectors: capdex p50 {p50:.1f} ms, p99 {p99:.1f} ms; NumPy brute force "
          f"p50 {b50:.1f} ms, p99 {b99:.1f} ms; p50 ratio {b50 / p50:.2f}x; recall@10 "
          f"{recall:.3f}; of which query embedding p50 {e50:.1f} ms", flush=True)
    index.save()
    print(f"  index file {index.path.stat().st_size / size:.0f} bytes/vector", flush=True)


def server_memory(size: int) -> None:
    """Peak RSS of a process holding the saved index and the embedder, after a search."""
    code = (
        "import sys; from pathlib import Path\n"
        "from capdex.embedder import Embedder; from store.vectors import VectorIndex\n"
        "e = Embedder('all-MiniLM-L6-v2'); ix = VectorIndex(Path(sys.argv[1]), e.name, e.dim)\n"
        "assert ix.load(); ix.search(e.embed(['a dog on the beach']), 10)\n"
        # VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the parent across exec
        "print(int(open('/proc/self/status').read().split('VmHWM:')[1].split()[0]) / 1024)\n"
    )
    out = subprocess.run([sys.executable, "-c", code, str(WORK / f"search-{size}.faiss")],
                         check=True, capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    print(f"  a process holding {size:,} vectors + the embedder: peak RSS "
          f"{float(out.stdout.split()[-1]):.0f} MB", flush=True)


if __name__ == "__main__":
    WORK.mkdir(parents=True, exist_ok=True)
    print(describe())
    for n in [int(a) for a in sys.argv[1:]] or [100_000, 1_000_000]:
        bench(n)
        server_memory(n)
    print(json.dumps({"bench_peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
