"""Search through a compressed (IVF-PQ) index gives what the exact index gives."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest

from capdex.embedder import Embedder
from capdex.settings import Settings
from capdex.search.engine import SearchEngine
from capdex.store import ivfpq
from capdex.store.db import Database
from capdex.store.vectors import FLAT, PQ
from tests.search.conftest import Item, store_library

pytestmark = pytest.mark.slow  # embeds 1,540 captions and trains a PQ index

COLOURS = ["red", "blue", "green", "yellow", "black", "white", "brown", "grey", "orange", "pink"]
THINGS = ["dog", "cat", "man", "woman", "child", "car", "boat", "bird", "horse", "bicycle",
          "house", "tree", "flower", "cake"]
PLACES = ["beach", "street", "park", "kitchen", "forest", "field", "lake", "snow", "garden",
          "road", "city"]
QUERIES = ["a dog playing on the beach", "red car in the city", "children in a snowy park",
           "birthday cake", "a horse by the lake", "flowers in a garden"]


class CachedEmbedder:
    """The real embedder, remembering what it embedded (the library is stored twice: SQLite,
    PostgreSQL)."""

    cache: ClassVar[dict[str, np.ndarray]] = {}

    def __init__(self, real: Embedder) -> None:
        self.real, self.name = real, real.name

    @property
    def dim(self) -> int:
        return self.real.dim

    def embed(self, texts):
        missing = [t for t in texts if t not in self.cache]
        if missing:
            self.cache.update(zip(missing, self.real.embed(missing), strict=True))
        return np.stack([self.cache[t] for t in texts])


def test_compressed_search_ranks_as_exact_search(db_settings: Settings, embedder: Embedder,
                                                 tmp_path: Path) -> None:
    items = [Item(f"/lib/{i}.jpg", f"a {c} {t} in the {p}")
             for i, (c, t, p) in enumerate(itertools.product(COLOURS, THINGS, PLACES))]
    db = Database(db_settings.db_url)
    ids = store_library(db, CachedEmbedder(embedder), items)
    exact = SearchEngine(db_settings, db, embedder)
    compressed = SearchEngine(db_settings.model_copy(update={
        "data_dir": tmp_path / "compressed", "exact_search_max": 500,
        "vector_compress_above": 1_000}), db, embedder)
    assert exact.index.kind == FLAT
    assert compressed.index.kind == PQ and ivfpq.is_mapped(compressed.index._index)

    # Like the IVF kind, the compressed one finds what its probed cells hold (a tenth of them,
    # here 8 of 39): the top results are as exact search's up to recall@10 >= 0.95, and every
    # photo it returns has its exact score.
    found = wanted = 0
    for query in QUERIES:
        for mode in ("semantic", "hybrid"):
            for min_score in (0.0, 0.3):
                want = exact.search(query, k=1_000, mode=mode, min_score=min_score).results
                got = compressed.search(query, k=1_000, mode=mode, min_score=min_score).results
                assert got[0].path == want[0].path, (query, mode)
                top = {h.path for h in want[:10]}
                found, wanted = found + len(top & {h.path for h in got[:10]}), wanted + len(top)
                exact_scores = {h.path: h.score for h in want}
                assert all(exact_scores.get(h.path) == pytest.approx(h.score, abs=1e-4)
                           for h in got[:100]), (query, mode)
    for name in ("0.jpg", "700.jpg", "1500.jpg"):  # similar photos: the same, up to recall
        want = exact.similar(ids[name], 10).results
        got = compressed.similar(ids[name], 10).results
        found += len({h.id for h in want} & {h.id for h in got})
        wanted += len(want)
        assert got[0].id == want[0].id and got[0].score == pytest.approx(want[0].score, abs=1e-4)
    assert found / wanted >= 0.95, found / wanted
