"""Keyword search cost at library scale, and what the sync triggers cost a writer.

Run by hand: `PYTHONPATH=. python benchmarks/keyword_search.py [N]`. Writes N photos (each with
a file and a caption, as the indexer does) with and without the FTS triggers, then times
`SqliteKeywordIndex.match` for rare, common and mixed queries.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from sqlalchemy import text

from capdex.store.db import Database
from capdex.store.keyword import SqliteKeywordIndex

WORDS = ["cat", "dog", "beach", "mountain", "car", "bicycle", "flower", "tree", "house",
         "street", "city", "river", "lake", "boat", "bird", "horse", "cup", "table", "chair",
         "window", "sky", "cloud", "sunset", "snow", "forest", "garden", "child", "woman", "man",
         "bridge", "tower", "church", "train", "bus", "plane"]


def fill(db: Database, n: int, rng: np.random.Generator) -> float:
    # a Zipf-like mix: a few words are in many captions, most in few
    weights = 1 / np.arange(1, len(WORDS) + 1)
    weights /= weights.sum()
    started = time.perf_counter()
    with db.engine.begin() as conn:
        for start in range(0, n, 1000):
            rows = range(start, min(n, start + 1000))
            conn.execute(text("INSERT INTO photos (id, content_hash, size, created_at) "
                              "VALUES (:id, :h, 1, '2024-01-01')"),
                         [{"id": i + 1, "h": f"{i:064x}"} for i in rows])
            conn.execute(text("INSERT INTO captions (photo_id, text, source, created_at) "
                              "VALUES (:id, :t, 'machine', '2024-01-01')"),
                         [{"id": i + 1, "t": "a " + " and a ".join(
                             rng.choice(WORDS, 2, replace=False, p=weights))} for i in rows])
            conn.execute(text("INSERT INTO files (path, size, mtime_ns, photo_id, indexed_at) "
                              "VALUES (:p, 1, 1, :id, '2024-01-01')"),
                         [{"id": i + 1, "p": f"/photos/{i // 500}/IMG_{i:06d}.jpg"} for i in rows])
    return time.perf_counter() - started


def main(n: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        plain = Database(f"sqlite:///{Path(tmp) / 'plain.db'}")
        with plain.engine.begin() as conn:
            for (name,) in conn.execute(text("SELECT name FROM sqlite_master WHERE type='trigger'")).all():
                conn.execute(text(f"DROP TRIGGER {name}"))
        without = fill(plain, n, np.random.default_rng(0))
        db = Database(f"sqlite:///{Path(tmp) / 'capdex.db'}")
        with_triggers = fill(db, n, np.random.default_rng(0))
        print(f"{n} photos written: {without:.1f} s without triggers = 1.00, "
              f"{with_triggers:.1f} s with ({with_triggers / without:.2f})")
        index = SqliteKeywordIndex(db)
        for query in ("plane", "cat", "a cat on a beach", "IMG_000123", "zebra"):
            started = time.perf_counter()
            for _ in range(5):
                matches = index.match(query)
            ms = (time.perf_counter() - started) / 5 * 1000
            print(f"{query!r:>22}: {len(matches):>6} matches, {ms:7.1f} ms")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000)
