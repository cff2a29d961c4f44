"""Similar photos: what a photo looks like first, what its caption says second.

A photo the tagger captioned has looks (`capdex.store.looks`: its pooled image features). Its
neighbours are the photos whose looks are closest (cosine), each scored
`LOOKS_WEIGHT · looks + (1 - LOOKS_WEIGHT) · caption` (the caption vectors' cosine, when both
have one), near-duplicates (looks ≥ NEAR_DUPLICATE: the same picture re-encoded, resized,
lightly edited) first. A photo without looks (another captioner made its caption) falls back to
its caption vector's neighbours, scored by that cosine.

Measured on the sample photos (tests/search/test_similar.py): a re-encoded copy's looks score
0.92 (resized to two thirds, JPEG quality 60); other scenes 0.1-0.25.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from sqlalchemy import select

from capdex.store import looks, repo
from capdex.store.models import Vector

if TYPE_CHECKING:
    from capdex.search.engine import SearchEngine, SimilarResults
    from capdex.store.vectors import VectorIndex

#: Weight of the looks in the score; the rest is the caption vectors' cosine.
LOOKS_WEIGHT = 0.8
#: Looks at least this close mean the same picture (re-encoded, resized, lightly edited).
NEAR_DUPLICATE = 0.8
#: Looks neighbours fetched per photo asked for, before the caption signal re-orders them.
FETCH_FACTOR = 4


@dataclass
class Neighbour:
    photo_id: int
    score: float
    looks: float | None = None
    caption: float | None = None

    @property
    def near_duplicate(self) -> bool:
        return self.looks is not None and self.looks >= NEAR_DUPLICATE

    def order(self) -> tuple[bool, float, int]:
        return (not self.near_duplicate, -self.score, self.photo_id)

    def match(self) -> dict[str, object]:
        out: dict[str, object] = {}
        if self.looks is not None:
            out["looks"] = {"score": round(self.looks, 4), "near_duplicate": self.near_duplicate}
        if self.caption is not None:
            out["caption"] = {"score": round(self.caption, 4)}
        return out


def find_similar(engine: SearchEngine, photo_id: int, k: int) -> SimilarResults:
    """The `k` photos most like `photo_id`; raises `SimilarNotFound` (no such photo, or it has
    neither looks nor a caption vector yet)."""
    from capdex.search.engine import SimilarNotFound, SimilarResults
    from capdex.store.models import Photo

    caption_index = engine.index
    model = looks.newest_model(engine.db)
    with engine.db.read() as session:
        photo = session.get(Photo, photo_id)
        if photo is None:
            raise SimilarNotFound(f"no photo with id {photo_id}")
        caption = repo.effective_caption(photo.captions)
        stored = session.execute(select(Vector.vector).where(
            Vector.photo_id == photo_id, Vector.embedder == caption_index.embedder)).scalar()
        seen = looks.looks_of(session, photo_id)
    caption_vector = np.frombuffer(stored, dtype=np.float32) if stored is not None else None
    text = caption.text if caption else None
    if seen is not None and seen[0] == model:
        index = engine.looks_index(model, len(seen[1]))
        found = _by_looks(engine, index, caption_index, photo_id, seen[1], caption_vector, k)
        return SimilarResults(photo_id, text, engine.similar_hits(found), by="looks")
    if caption_vector is None:
        raise SimilarNotFound(f"photo {photo_id} has no caption vector yet; run `capdex index`")
    found = _by_caption(engine, caption_index, photo_id, caption_vector, k)
    return SimilarResults(photo_id, text, engine.similar_hits(found), by="caption")


def _nearest(index: VectorIndex, vector: np.ndarray, k: int, photo_id: int,
             photos_of: Callable[[Sequence[int]], dict[int, int]]) -> list[tuple[int, float]]:
    """The k nearest (photo id, cosine) other than `photo_id`, among photos with a file."""
    fetch, found = k + 1, list[tuple[int, float]]()
    while True:
        scores, ids = index.search(vector, fetch)
        owner = photos_of([i for i in ids[0].tolist() if i >= 0])
        found = [(owner[i], float(s)) for i, s in zip(ids[0].tolist(), scores[0].tolist(),
                                                      strict=True)
                 if i in owner and owner[i] != photo_id]
        if len(found) >= k or fetch >= len(index):
            return found[:k]
        fetch *= 2


def _by_looks(engine: SearchEngine, index: VectorIndex, caption_index: VectorIndex,
              photo_id: int, vector: np.ndarray, caption_vector: np.ndarray | None,
              k: int) -> list[Neighbour]:
    if not len(index):
        return []
    found = _nearest(index, vector, max(k * FETCH_FACTOR, k + 8), photo_id,
                     lambda ids: looks.photos_of(engine.db, list(ids)))
    captions: dict[int, float] = {}
    if caption_vector is not None and found:
        vector_of = repo.vectors_of_photos(engine.db, [p for p, _ in found],
                                           caption_index.embedder)
        by_vector = caption_index.scores_of(caption_vector,
                                            np.array(list(vector_of), dtype=np.int64))
        captions = {vector_of[v]: s for v, s in by_vector.items()}
    out = []
    for other, seen in found:
        said = captions.get(other)
        score = seen if said is None else LOOKS_WEIGHT * seen + (1 - LOOKS_WEIGHT) * said
        out.append(Neighbour(other, score, looks=seen, caption=said))
    return sorted(out, key=Neighbour.order)[:k]


def _by_caption(engine: SearchEngine, index: VectorIndex, photo_id: int,
                vector: np.ndarray, k: int) -> list[Neighbour]:
    found = _nearest(index, vector, k, photo_id,
                     lambda ids: repo.photos_of_vectors(engine.db, ids))
    return [Neighbour(other, score, caption=score) for other, score in found]
