"""The stages an index run can do on a photo, in the order they run (see `capdex.indexer.stage`).

A new stage is one file in this package plus one line here.
"""

from __future__ import annotations

from capdex.indexer.stage import Stage
from capdex.indexer.stages.caption import CaptionStage
from capdex.indexer.stages.looks import LooksStage
from capdex.indexer.stages.ocr import OcrStage

STAGES: tuple[type[Stage], ...] = (
    CaptionStage,
    LooksStage,
    OcrStage,
)

__all__ = ["STAGES", "CaptionStage", "LooksStage", "OcrStage", "Stage"]
