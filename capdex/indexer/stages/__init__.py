"""The stages an index run can do on a photo, in the order they run (see `capdex.indexer.stage`).

A new stage is one file in this package plus one line here.
"""

from __future__ import annotations

from capdex.indexer.stage import Stage
from capdex.indexer.stages.caption import CaptionStage
from capdex.indexer.stages.faces import FacesStage
from capdex.indexer.stages.looks import LooksStage
from capdex.indexer.stages.ocr import OcrStage
from capdex.indexer.stages.place import PlaceStage

STAGES: tuple[type[Stage], ...] = (
    CaptionStage,
    LooksStage,
    OcrStage,
    FacesStage,
    PlaceStage,
)

__all__ = ["STAGES", "CaptionStage", "FacesStage", "LooksStage", "OcrStage", "PlaceStage", "Stage"]
