"""End-to-end search latency per mode on a large library (real MiniLM vectors).

Run by hand: `PYTHONPATH=. python benchmarks/search_latency.py [N]`. Builds N photos with
captions drawn from a small vocabulary (so only a few hundred distinct captions need embedding),
then times `SearchEngine.search` per mode, with and without a folder filter, against a keyword
search of the same query as the baseline (1.00). The query embedding is cached after the first
run, as it would be for a repeated query. Last, hybrid p50 with and without reading places and
dates out of the query (`parse`, issue 15: ≤ 2 ms more at 100k photos).
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from sqlalchemy import text

from capdex.embedder import Embedder
from capdex.settings import Settings
from capdex.search.engine import SearchEngine
from capdex.store.db import Database

sys.path.insert(0, str(Path(__file__).parent))
from keyword_search import fill


def add_vectors(db: Database, embedder: Embedder) -> None:
    with db.engine.begin() as conn:
        captions = conn.execute(text("SELECT id, photo_id, text FROM captions")).all()
        distinct = sorted({c.text for c in captions})
        vectors = dict(zip(distinct, embedder.embed(distinct), strict=True))
        conn.execute(text("INSERT INTO vectors (photo_id, caption_id, embedder, dim, vector, "
                          "created_at) VALUES (:p, :c, :e, :d, :v, '2024-01-01')"),
                     [{"p": c.photo_id, "c": c.id, "e": embedder.name, "d": 384,
                       "v": vectors[c.text].tobytes()} for c in captions])


def main(n: int) -> None:
    embedder = Embedder("all-MiniLM-L6-v2")
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp))
        db = Database(settings.db_url)
        fill(db, n, np.random.default_rng(0))
        add_vectors(db, embedder)
        engine = SearchEngine(settings, db, embedder)
        engine.search("warm-up", mode="semantic")  # loads the index and the model
        print(f"{n} photos; ms per search (ratio to keyword mode, same query)")
        for query in ("plane", "a cat on a beach", "zebra"):
            for folder in (None, "/photos/7"):
                times = {}
                for mode in ("keyword", "semantic", "hybrid"):
                    engine.search(query, mode=mode, folder=folder)  # query embedding cached
                    started = time.perf_counter()
                    for _ in range(3):
                        found = engine.search(query, mode=mode, folder=folder)
                    times[mode] = (time.perf_counter() - started) / 3 * 1000, found.total
                base = times["keyword"][0] or 1e-9
                cells = "  ".join(f"{m} {ms:7.1f} ({ms / base:5.2f}) total {t}"
                                  for m, (ms, t) in times.items())
                print(f"{query!r:>20} {'in one folder' if folder else 'everywhere':>13}: {cells}")
        # what reading places and dates out of the query adds (issue 15): p50 of hybrid searches
        for query in ("a cat on a beach", "zebra"):
            p50 = {}
            for parse in (False, True):
                engine.search(query, parse=parse)
                runs = []
                for _ in range(21):
                    started = time.perf_counter()
                    engine.search(query, parse=parse)
                    runs.append((time.perf_counter() - started) * 1000)
                p50[parse] = sorted(runs)[10]
            print(f"{query!r:>28} hybrid p50: parse=false {p50[False]:6.1f} ms, parse=true "
                  f"{p50[True]:6.1f} ms (+{p50[True] - p50[False]:.1f})")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000)
