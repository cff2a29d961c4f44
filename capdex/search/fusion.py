"""Fusing the semantic and keyword rankings into one hybrid score.

Two methods (setting `search_fusion`):

- "score": a probabilistic OR of the weighted mode scores,
  ``1 - (1 - ws·semantic) · (1 - wk·keyword)``. It is never below ``ws·semantic`` nor below
  ``wk·keyword``, so with the default weights (1, 0.9) hybrid keeps everything semantic mode
  returns and nearly everything keyword mode returns; agreement of both lifts a photo; and with
  wk < 1 photos containing every query word do not all tie at 1 — meaning orders them.
- "rrf": reciprocal rank fusion, ``Σ w / (k + rank)`` over the two rankings, divided by its
  largest possible value so it lies in (0, 1]. Ranks carry no absolute meaning, so here the
  cut-off is applied to each mode's own score before fusing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence


def score_fusion(semantic: float | None, keyword: float | None,
                 semantic_weight: float, keyword_weight: float) -> float:
    """Probabilistic OR of the weighted scores; a missing score counts as 0."""
    sem = min(max(semantic or 0.0, 0.0), 1.0) * semantic_weight
    kw = min(max(keyword or 0.0, 0.0), 1.0) * keyword_weight
    return 1.0 - (1.0 - sem) * (1.0 - kw)


def reciprocal_rank_fusion(rankings: Sequence[Sequence[int]], weights: Sequence[float],
                           k: int = 60) -> dict[int, float]:
    """Fused, normalised RRF score of every item in any ranking (best first in each)."""
    best = sum(w / (k + 1) for w in weights) or 1.0
    fused: dict[int, float] = {}
    for ranking, weight in zip(rankings, weights, strict=True):
        for rank, item in enumerate(ranking, 1):
            fused[item] = fused.get(item, 0.0) + weight / (k + rank)
    return {item: value / best for item, value in fused.items()}


def ranking(scores: Mapping[int, float]) -> list[int]:
    """Items by descending score (ties by item)."""
    return sorted(scores, key=lambda item: (-scores[item], item))
