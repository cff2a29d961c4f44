"""What reading places and dates out of a query costs (issue 15: ≤ 2 ms p50 at 100k photos).

Run by hand on a quiet machine: `PYTHONPATH=. python benchmarks/understand.py [N]` (default
100000). Places N photos at random spots near real towns (GeoNames, through the place stage's
geocoder, which is timed too), stores them as the place stage does, then times:
- the geocoder: photos per second (the place stage's work per photo);
- loading the place names a query may say (`SearchEngine.place_names`, done once a minute or
  after the index changed, so amortised);
- `understand()` per query over a mix of queries with and without places and dates: the cost
  parsing adds to each search (p50, p95).
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import numpy as np
from sqlalchemy import text

from capdex.indexer import geocode
from capdex.search.understand import PlaceNames, understand
from capdex.store import places
from capdex.store.db import Database

QUERIES = ["cat in Tokyo", "flowers in spring 2019", "summer in Australia", "December 2021",
           "in 2019", "last summer", "yesterday", "dog on the beach", "turkey dinner",
           "sunset over the sea in Lisbon last year", "birthday cake with candles",
           "snow in the mountains last winter", "New York at night", "a red car"]


def fill(db: Database, n: int, rng: np.random.Generator) -> float:
    """N photos with places; returns the geocoder's seconds."""
    # around real places: a random known town, moved up to ~20 km
    anchors = np.array([(38.72, -9.14), (35.68, 139.69), (-33.87, 151.21), (40.71, -74.0),
                        (48.86, 2.35), (41.01, 28.98), (51.51, -0.13), (-22.91, -43.17),
                        (19.43, -99.13), (28.61, 77.21), (-1.29, 36.82), (55.76, 37.62)])
    picks = anchors[rng.integers(0, len(anchors), n)] + rng.uniform(-3, 3, (n, 2))
    started = time.perf_counter()
    found = geocode.places([(float(a), float(b)) for a, b in picks])
    seconds = time.perf_counter() - started
    with db.engine.begin() as conn:
        for start in range(0, n, 1000):
            rows = range(start, min(n, start + 1000))
            conn.execute(text("INSERT INTO photos (id, content_hash, size, created_at) "
                              "VALUES (:id, :h, 1, '2024-01-01')"),
                         [{"id": i + 1, "h": f"{i:064x}"} for i in rows])
            conn.execute(text("INSERT INTO photo_places (photo_id, city, region, country, "
                              "version, created_at) VALUES (:id, :c, :r, :k, 'b', '2024-01-01')"),
                         [{"id": i + 1, "c": found[i].city if found[i] else None,
                           "r": found[i].region if found[i] else None,
                           "k": found[i].country if found[i] else None} for i in rows])
    return seconds


def main(n: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        db = Database(f"sqlite:///{Path(tmp) / 'capdex.db'}")
        geocoding = fill(db, n, np.random.default_rng(0))
        print(f"{n} photos geocoded in {geocoding:.2f} s ({n / geocoding:,.0f} photos/s, "
              "data set load included)")
        started = time.perf_counter()
        with db.read() as session:
            names = PlaceNames(places.known_names(session))
        print(f"place names loaded: {len(names)} names in "
              f"{(time.perf_counter() - started) * 1000:.1f} ms (once a minute at most)")
        today = date(2026, 12, 5)
        for query in QUERIES:  # warm up
            understand(query, names, today)
        timings = []
        for _ in range(200):
            for query in QUERIES:
                started = time.perf_counter()
                understand(query, names, today)
                timings.append((time.perf_counter() - started) * 1000)
        timings.sort()
        print(f"understand(): p50 {statistics.median(timings):.3f} ms, "
              f"p95 {timings[int(len(timings) * 0.95)]:.3f} ms over {len(timings)} queries")
        for query in QUERIES[:6]:
            print(f"  {query!r} → {understand(query, names, today).as_dict()}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000)
