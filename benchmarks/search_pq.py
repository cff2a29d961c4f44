"""Benchmark 4c: the compressed (IVF-PQ) index at 1M caption vectors, as a searcher uses it.

The vectors are benchmark 4's (`search_scale.make_vectors`: real MiniLM embeddings of templated
captions, copied with noise), stored in a real capdex SQLite database, which is the vector
source the PQ kind re-scores with. `open_index` builds the index from the database the way a
first `capdex index` past `vector_compress_above` would. Then a separate process, as the API
server does, opens it memory-mapped (`open_index(..., mmap=True)`) and answers queries: each a
fresh text embedded by the real embedder, then `search(q, 10)` (PQ candidates re-scored from
the database). Reported: latency p50/p99 including the query embedding, recall@10 against exact
search (NumPy over all vectors), bytes per photo (the file's growth per vector, and the whole
file over the count), and the searcher's peak RSS and how much its RSS grows from opening the
index and searching (mapped pages it touched included). NumPy brute force latency is the speed baseline, as in benchmark 4.

    PYTHONPATH=. python benchmarks/search_pq.py [SIZE=1000000]
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks.machine import describe
from benchmarks.search_scale import make_vectors, percentiles, queries

WORK = Path(__file__).parent / "_work"
ROOT = Path(__file__).resolve().parent.parent
EMBEDDER = "all-MiniLM-L6-v2"


def store(db_url: str, vectors: np.ndarray, embedder: str) -> None:
    """One photo, caption and vector row per vector (ids 1..n), in bulk."""
    from sqlalchemy import insert

    from capdex.store.db import Database
    from capdex.store.models import Caption, Photo, Vector

    db = Database(db_url)
    with db.session() as session:
        for start in range(0, len(vectors), 50_000):
            ids = range(start + 1, min(len(vectors), start + 50_000) + 1)
            session.execute(insert(Photo), [{"id": i, "content_hash": f"{i:064x}", "size": 1}
                                            for i in ids])
            session.execute(insert(Caption), [{"id": i, "photo_id": i, "text": "x",
                                               "source": "machine"} for i in ids])
            session.execute(insert(Vector), [{"id": i, "photo_id": i, "caption_id": i,
                                              "embedder": embedder, "dim": vectors.shape[1],
                                              "vector": vectors[i - 1].tobytes()} for i in ids])


SEARCHER = """
import json, sys, time
from pathlib import Path
from capdex.embedder import Embedder
from capdex.store.db import Database
from capdex.store.vectors import open_index
def rss_mb(field="VmRSS:"):
    for line in open("/proc/self/status"):
        if line.startswith(field):
            return int(line.split()[1]) / 1024
texts = json.loads(sys.stdin.read())
e = Embedder(EMBEDDER_NAME)
e.embed(["warm up"])
before = rss_mb()
db = Database(sys.argv[2])
index = open_index(Path(sys.argv[1]), db, e.name, e.dim, 50_000, compress_above=1_000,
                   mmap=True)
assert index.kind == "ivfpq", index.kind
times, found = [], []
for text in texts:
    start = time.perf_counter()
    _, ids = index.search(e.embed([text]), 10)
    times.append(time.perf_counter() - start)
    found.append(ids[0].tolist())
print(json.dumps({"times": times, "found": found, "before_mb": before, "after_mb": rss_mb(),
                  "peak_mb": rss_mb("VmHWM:")}))
""".replace("EMBEDDER_NAME", repr(EMBEDDER))


def searcher(path: Path, db_url: str, texts: list[str]) -> dict:
    out = subprocess.run([sys.executable, "-c", SEARCHER, str(path), db_url],
                         input=json.dumps(texts), check=True, capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(size: int) -> None:
    import faiss

    from capdex.embedder import Embedder
    from capdex.store.db import Database
    from capdex.store.vectors import open_index

    folder = WORK / f"pq-{size}"
    folder.mkdir(parents=True, exist_ok=True)
    db_url, path = f"sqlite:///{folder / 'capdex.db'}", folder / "vectors.faiss"
    embedder = Embedder(EMBEDDER)
    vectors = make_vectors(embedder, size)
    if not (folder / "stored").exists():
        start = time.perf_counter()
        store(db_url, vectors, embedder.name)
        (folder / "stored").touch()
        print(f"stored {size:,} vectors in SQLite in {time.perf_counter() - start:.0f} s")
    start = time.perf_counter()
    index = open_index(path, Database(db_url), embedder.name, embedder.dim, 50_000,
                       compress_above=size // 2)
    print(f"index kind {index.kind}, built (or checked) from the database in "
          f"{time.perf_counter() - start:.0f} s; nlist {index._index.nlist}, nprobe "
          f"{index._index.nprobe}, within slack {index._slack:.3f}", flush=True)
    empty = faiss.read_index(str(path))
    empty.reset()
    marginal = (path.stat().st_size - faiss.serialize_index(empty).size) / size
    whole = path.stat().st_size / size
    del index, empty

    texts = queries()
    result = searcher(path, db_url, texts)
    exact, numpy_times = [], []
    for text in texts:
        start = time.perf_counter()
        q = embedder.embed([text])
        scores = vectors @ q[0]
        top = np.argpartition(-scores, 10)[:10]
        numpy_times.append(time.perf_counter() - start)
        exact.append({int(i) + 1 for i in top})
    recall = np.mean([len(set(f) & e) / 10 for f, e in zip(result["found"], exact, strict=True)])
    p50, p99 = percentiles(result["times"])
    b50, b99 = percentiles(numpy_times)
    extra = result["after_mb"] - result["before_mb"]
    print(f"{size:>9,} vectors, IVF-PQ memory-mapped, re-scored from SQLite: p50 {p50:.1f} ms, "
          f"p99 {p99:.1f} ms; NumPy brute force p50 {b50:.1f} ms, p99 {b99:.1f} ms; p50 ratio "
          f"{b50 / p50:.2f}x; recall@10 {recall:.3f}")
    print(f"  file: {marginal:.1f} bytes/photo for the codes and ids, {whole:.1f} bytes/photo "
          f"with the trained cells and codebooks")
    print(f"  searcher: peak RSS (VmHWM) {result['peak_mb']:.0f} MB (model loading "
          f"included); RSS "
          f"{result['before_mb']:.0f} MB with the embedder loaded, {result['after_mb']:.0f} MB "
          f"after opening the index and {len(texts)} searches: {extra:.0f} MB, "
          f"{extra * 2**20 / size:.0f} bytes/photo (the flat index holds "
          f"{vectors.shape[1] * 4} bytes/photo)", flush=True)


if __name__ == "__main__":
    print(describe())
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000)
