"""The OCR stage: the text a photo shows, read in its own worker thread (issue 17), so it
overlaps decoding and captioning and no photo waits for it to become searchable by its caption.

A photo's OCR is pending when no row of the current engine name + version exists, so a new
engine version redoes OCR on the next run — never captioning.

Image size (measured on 12-MP camera JPEGs, `benchmarks/tagger_throughput.py`'s photos, 2
cores): Huffman decoding is the floor and barely depends on the scale JPEG draft mode decodes
to — 1/8 scale (500x375, what the tagger and the 384-px thumbnail need) and 1/2 scale
(2000x1500, `ocr_max_side`) differ by ~15%, a full decode costs ~3x. So the shared decode of a
photo OCR will read is done at OCR's size, once, and the caption and thumbnail views are
reduced from it (a box filter, ~2 ms), rather than decoding twice. With a text gate in the
engine (`gate_side`, `find_text(image)`: the detector where the photo has sharp edges, issue 17)
the shared decode only needs the gate's size, and photos with lines of text are decoded again
at `ocr_max_side` in this stage's worker, from the bytes already in memory (`StageInput.larger`),
for the recogniser to read the lines found: most photos show no text and never pay for OCR's
size, and none is searched for text twice.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from capdex.captioners.ocr import OcrEngine, OcrUnavailable, shared_engine
from capdex.indexer.stage import Stage, StageInput
from capdex.store import ocr as ocr_store

if TYPE_CHECKING:
    from PIL import Image
    from sqlalchemy.orm import Session

    from capdex.images import SizeHint
    from capdex.settings import Settings


class OcrStage(Stage):
    name = "ocr"
    worker = True
    fatal = (OcrUnavailable,)  # not installed or the models do not load: stop the run

    def __init__(self, settings: Settings, engine: OcrEngine | None = None) -> None:
        self.settings = settings
        self.engine = engine or shared_engine(settings.ocr_min_confidence)
        self._version: str | None = None

    @classmethod
    def create(cls, settings: Settings, options: Mapping[str, Any]) -> OcrStage | None:
        on = options.get("ocr")
        if not (settings.ocr if on is None else on):
            return None
        return cls(settings, options.get("ocr_engine"))

    @property
    def version(self) -> str:
        if self._version is None:  # the engine reads it from the package metadata
            self._version = self.engine.version
        return self._version

    @property
    def _gate_side(self) -> int | None:
        side = getattr(self.engine, "gate_side", None)
        return side if isinstance(side, int) and side > 0 else None

    @property
    def enlarges(self) -> bool:
        return self._gate_side is not None

    @property
    def size(self) -> SizeHint | None:
        # only the long side matters: a 12-MP 4:3 photo decodes at half scale
        return (1, self._gate_side or self.settings.ocr_max_side)

    def check(self) -> None:
        self.engine.check_installed()

    def warm_up(self) -> None:
        self.engine.load()

    def pending(self, session: Session) -> list[int]:
        return ocr_store.stale_photos(session, self.engine.name, self.version)

    def prepare(self, image: Image.Image) -> Any:
        return _fit(image, self._gate_side or self.settings.ocr_max_side)

    def run(self, inputs: Sequence[StageInput]) -> list[Any]:
        if self._gate_side is None:
            self.engine.load()  # OcrUnavailable (fatal) here, not per photo
        # else the gate loads the models (OcrUnavailable, as fatal) when a photo first has sharp
        # edges: a run of photos without any imports no OpenCV or ONNX Runtime, whose import
        # would compete with the captioner's start-up (issue 17)
        out: list[dict[str, Any]] = []
        for item in inputs:
            image, found = item.view, None
            if self._gate_side is not None:
                found = self.engine.find_text(image)
                if found is None:
                    out.append({"engine": self.engine.name, "text": "", "confidence": None})
                    continue
                side = self.settings.ocr_max_side
                if max(image.size) >= self._gate_side:  # else the view is the whole photo
                    image = _fit(item.larger((1, side)), side)
            result = self.engine.read(image, found)
            out.append({"engine": self.engine.name, "text": result.text,
                        "confidence": result.confidence})
        return out

    def write(self, session: Session, photo_id: int, result: Any, version: str) -> None:
        ocr_store.set_text(session, photo_id, result["text"], result["confidence"],
                           result.get("engine") or self.engine.name, version)

    def describe_failure(self, exc: BaseException) -> str:
        return f"OCR failed: {exc}"

    def tally(self, summary: Any, result: Any) -> None:
        summary.ocr_read += 1
        summary.ocr_with_text += bool(result["text"])


def _fit(image: Image.Image, side: int) -> Image.Image:
    """The image at most `side` pixels a side (a copy only when it must shrink)."""
    if max(image.size) <= side:
        return image
    image = image.copy()
    image.thumbnail((side, side))
    return image
