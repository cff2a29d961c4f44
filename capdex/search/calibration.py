"""Semantic scores measured above a query's background, so one cut-off fits short and long queries.

Raw cosine similarity is a poor cut-off: a one-word query such as "car" scores 0.3–0.4 against
captions that have nothing to do with it, while a long query's true match may score 0.35. So the
semantic score is the cosine measured from the query's *background* — its mean cosine with a
fixed list of typical captions (`background.txt`) — towards 1:

    score = (cosine - background) / (1 - background)

0 means "as close as a typical unrelated caption", 1 means identical meaning. The list does not
depend on the library, so scores do not change as photos are added.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import ClassVar

import numpy as np

from capdex.embedder import Embedder

BACKGROUND_CAPTIONS = Path(__file__).with_name("background.txt")


def background_captions() -> list[str]:
    lines = BACKGROUND_CAPTIONS.read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


class Background:
    """Each query's mean cosine with the typical captions, embedded once per model (kept on disk
    by the embedder) and held for the process."""

    _matrices: ClassVar[dict[str, np.ndarray]] = {}
    _lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, embedder: Embedder) -> None:
        self.embedder = embedder

    def of(self, query_vector: np.ndarray) -> float:
        with self._lock:
            matrix = self._matrices.get(self.embedder.name)
            if matrix is None:
                matrix = self._matrices[self.embedder.name] = self.embedder.embed_kept(
                    background_captions())
        # never at or above 1, so the scale below stays finite
        return min(float(np.mean(matrix @ query_vector)), 0.99)


def calibrate(cosine: float, background: float) -> float:
    """The semantic score of a cosine for a query with this background."""
    return (cosine - background) / (1.0 - background)


def cosine_for(score: float, background: float) -> float:
    """The cosine that has this semantic score (the inverse of `calibrate`)."""
    return background + score * (1.0 - background)
