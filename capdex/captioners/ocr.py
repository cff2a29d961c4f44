"""Offline OCR: the text a photo shows, in reading order, with the engine's name and version.

Like a captioner, this knows images and a model, nothing of the store. The engine is RapidOCR
(PP-OCR detection + recognition as ONNX models shipped inside `rapidocr-onnxruntime`), loaded
lazily, once, under a lock. `assemble` (reading order, dropping weak fragments) is pure so it
can be tested without the model.

Most photos show no text, so the engine has a gate (issue 17): `find_text` looks at the photo
at the detector's own scale (DETECT_SIDE), finds the blocks with sharp edges (text is drawn
with them; sky, skin, walls and blur have none), and runs the same PP-OCR detector, with its
own box post-processing, on the region they span only. That detection is the read's: a photo
with no line boxes is done, and one with boxes is only recognised (`read(image, found)`: the
boxes scaled to the photo at up to `ocr_max_side`), never detected twice. Looking at a small
downscale instead was measured and rejected: at 320 px the detector missed 28 of the 104 text
photos of the OCR test set (tests/captioners/ocr_photos.py), at 480 px 10, at 640 px 5, and a
lower threshold on the small map does not help (its response to small print is ~0) — small
print and signs far away vanish. This gate, at full detection scale, misses none of them.

On photos full of sharp detail (foliage, rock, water) the detector still sees most of the photo
and is nearly all of OCR's cost, so it runs from a rewritten graph (`ocr_graph`: the exporter's
elementwise chains folded into its convolutions, 1.7x faster, the same maps to float rounding).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    from PIL import Image

log = logging.getLogger(__name__)

ENGINE_NAME = "rapidocr"
_PACKAGE = "rapidocr-onnxruntime"
_MODULE = "rapidocr_onnxruntime"
#: Longest side the text detector sees (PaddleOCR's server default).
DETECT_SIDE = 960
#: The gate's blocks (px at DETECT_SIDE): a block is sharp when at least GATE_EDGE_PIXELS of
#: its pixels, on the photo's 2x2 mean (grain averaged out), differ by GATE_EDGE_LEVELS (of
#: 255, in any channel) from the (mean) pixel 2 px away.
#: Lenient on purpose: 2x the levels still missed no text photo of the test set.
GATE_BLOCK = 32
GATE_EDGE_LEVELS = 24
GATE_EDGE_PIXELS = 4


class OcrUnavailable(RuntimeError):
    """The OCR engine is not installed (or cannot load); names the package to install."""


@dataclass(frozen=True)
class Fragment:
    """One recognised line piece: its box (x0, y0, x1, y1), text and the engine's confidence."""

    box: tuple[float, float, float, float]
    text: str
    confidence: float


@dataclass(frozen=True)
class TextBoxes:
    """Where the detector found lines on a view of a photo: quadrilaterals, (n, 4, 2) float32
    in the view's pixels, clockwise from the top left, and the view's size (width, height)."""

    points: np.ndarray
    size: tuple[int, int]


@dataclass(frozen=True)
class OcrResult:
    """The text of one photo ("" when it shows none) and the mean confidence of what was kept."""

    text: str
    confidence: float | None


def assemble(fragments: Sequence[Fragment], min_confidence: float) -> OcrResult:
    """Kept fragments in reading order: lines top to bottom, pieces left to right in a line.

    A fragment below `min_confidence` or with fewer than two letters/digits is dropped: on
    photos without text the detector finds texture that reads as lone characters ("S=", "2").
    Fragments belong to one line when their vertical centres are within half a line height.
    """
    kept = [f for f in fragments
            if f.confidence >= min_confidence and sum(c.isalnum() for c in f.text) >= 2]
    if not kept:
        return OcrResult("", None)
    lines: list[list[Fragment]] = []
    for frag in sorted(kept, key=lambda f: (f.box[1] + f.box[3]) / 2):
        centre, height = (frag.box[1] + frag.box[3]) / 2, frag.box[3] - frag.box[1]
        if lines:
            last = lines[-1][-1]
            last_centre, last_height = (last.box[1] + last.box[3]) / 2, last.box[3] - last.box[1]
            if abs(centre - last_centre) <= max(height, last_height, 1.0) / 2:
                lines[-1].append(frag)
                continue
        lines.append([frag])
    text = "\n".join(" ".join(f.text.strip() for f in sorted(line, key=lambda f: f.box[0]))
                     for line in lines)
    confidence = sum(f.confidence for f in kept) / len(kept)
    return OcrResult(text, round(confidence, 4))


class OcrEngine:
    """RapidOCR behind one method, `read(image)`; `name` and `version` go with every result."""

    name = ENGINE_NAME
    #: The side `has_text` looks at (the indexer decodes photos this large for it); None: no
    #: gate, every photo is read in full.
    gate_side: int | None = DETECT_SIDE

    def __init__(self, min_confidence: float = 0.6, gate: bool = True) -> None:
        self.min_confidence = min_confidence
        if not gate:
            self.gate_side = None
        self._engine: Any = None  # a RapidOCR (no type hints)
        self._lock = threading.Lock()

    @property
    def version(self) -> str:
        """The package version (it fixes the bundled models) and what we change of its output:
        a new one means OCR again, e.g. "1.4.4 det960max view min0.6"."""
        from importlib.metadata import PackageNotFoundError, version

        try:
            package = version(_PACKAGE)
        except PackageNotFoundError as exc:
            raise OcrUnavailable(_missing_message()) from exc
        # "max": detection scaled to at most DETECT_SIDE whatever the photo's size (the first
        # release said det960 but detected large photos at up to 2000 px); "view": the gate's
        # detection (on the view the indexer decodes, around the sharp region) is the read's.
        # The rewritten detector (ocr_graph) is not named: its maps are the shipped model's up
        # to float rounding (~1e-4), its lines the same, so nothing needs reading again.
        gated = " view" if self.gate_side else ""
        return f"{package} det{DETECT_SIDE}max{gated} min{self.min_confidence:g}"

    def check(self) -> None:
        """Raise OcrUnavailable unless the engine can run here; cheap (no model is loaded)."""
        self.check_installed()
        _import_engine()

    def check_installed(self) -> None:
        """Raise OcrUnavailable unless the engine's package is installed, without importing it.

        Cheap enough for every index run: importing the engine loads OpenCV and ONNX Runtime
        (0.3-1 s), which a run with nothing to read should not pay; `load` imports it (and says
        what is missing) when a photo needs OCR.
        """
        from importlib.util import find_spec

        _ = self.version
        if find_spec(_MODULE) is None:
            raise OcrUnavailable(_missing_message())

    def load(self) -> None:
        """Load the ONNX models (once; later calls return at once)."""
        with self._lock:
            if self._engine is not None:
                return
            RapidOCR = _import_engine()
            # No angle classifier: photos are decoded upright (EXIF), and it costs ~30 %.
            # Detection on the longest side scaled to at most DETECT_SIDE, not the default
            # "shortest side up to 736": that upscales small images (a 64 px thumbnail took 1 s)
            # and costs 7x on a photo without text (1.5 s → 0.2 s on 2 cores); recognition
            # still reads the lines from the full-size image.
            engine = RapidOCR(use_cls=False, print_verbose=False, det_limit_type="max",
                              det_limit_side_len=DETECT_SIDE)
            _pin_detection_side(engine.text_det)
            _use_fused_detector(engine.text_det)
            self._engine = engine

    def find_text(self, image: Image.Image) -> TextBoxes | None:
        """The lines of text `image` (a PIL image, the view at `gate_side`) shows, found by the
        detector where the photo has sharp edges; None when there are none, and then a full
        `read` would find none either (see the module docstring)."""
        import numpy as np

        array = _rgb_array(_fit(image, self.gate_side or DETECT_SIDE))
        region = sharp_region(array)
        if region is None:
            return None  # no sharp edge anywhere: nothing to load the model for
        self.load()
        detector = self._engine.text_det
        height, width = array[region].shape[:2]
        # a strip (low, or much wider than high) gets the engine's own black rows above and
        # below: the detector needs the room (a 493x58 banner's "node" was found only with it)
        crop, record = self._engine.maybe_add_letterbox(array[region], {})
        top = record["padding_1"]["top"]
        with self._lock:
            probabilities = detector.infer(_detector_input(crop))[0]
        # the input was padded, not resized: the map's top-left part is the crop, pixel for pixel
        padded = crop.shape[0]
        boxes, _ = detector.postprocess_op(probabilities[:, :, :padded, :width], (padded, width))
        if len(boxes) == 0:
            return None
        boxes[..., 1] -= top
        boxes = detector.filter_tag_det_res(boxes, (height, width))
        if len(boxes) == 0:
            return None
        offset = np.array([region[1].start, region[0].start], dtype=np.float32)
        return TextBoxes(boxes.astype(np.float32) + offset, (array.shape[1], array.shape[0]))

    def has_text(self, image: Image.Image) -> bool:
        """Whether `image` (a PIL image) shows lines of text (`find_text`); True without a
        gate."""
        return not self.gate_side or self.find_text(image) is not None

    def read(self, image: Image.Image, found: TextBoxes | None = None) -> OcrResult:
        """The text `image` (a PIL image) shows, in reading order; "" when none. With `found`
        (`find_text` on a smaller view of the same photo) only those lines are recognised, from
        `image`; without, the engine detects them itself."""
        self.load()
        array = _rgb_array(image)
        if found is None:
            with self._lock:  # one inference at a time: onnxruntime already uses every core
                lines, _ = self._engine(array)
            pieces = [(points, text, score) for points, text, score in lines or []]
        else:
            pieces = self._recognise(array, found)
        fragments = []
        for points, text, score in pieces:
            xs, ys = [p[0] for p in points], [p[1] for p in points]
            fragments.append(Fragment((float(min(xs)), float(min(ys)), float(max(xs)),
                                       float(max(ys))), str(text), float(score)))
        return assemble(fragments, self.min_confidence)

    def _recognise(self, array: np.ndarray, found: TextBoxes) -> list[tuple[Any, str, float]]:
        """(box, text, confidence) of each line of `found`, scaled onto `array` and recognised
        as the engine's own pipeline does (sorted, cropped upright, recognised in batches)."""
        import numpy as np

        height, width = array.shape[:2]
        scale = np.array([width / found.size[0], height / found.size[1]], dtype=np.float32)
        points = found.points * scale
        points[..., 0] = points[..., 0].clip(0, width - 1)
        points[..., 1] = points[..., 1].clip(0, height - 1)
        engine = self._engine
        boxes = engine.sorted_boxes(points)
        with self._lock:
            crops = engine.get_crop_img_list(engine.load_img(array), boxes)
            recognised, _ = engine.text_rec(crops)
        return [(box.tolist(), text, score)
                for box, (text, score, *_) in zip(boxes, recognised, strict=True)]


def _rgb_array(image: Image.Image) -> np.ndarray:
    import numpy as np

    return np.asarray(image.convert("RGB"))


def _fit(image: Image.Image, side: int) -> Image.Image:
    """`image` at most `side` px a side (a copy only when it must shrink)."""
    if max(image.size) <= side:
        return image
    image = image.copy()
    image.thumbnail((side, side))
    return image


def sharp_region(array: np.ndarray) -> tuple[slice, slice] | None:
    """The rows and columns spanning `array`'s sharp blocks (GATE_BLOCK), one block of margin
    around them so the detector sees their context; None when no block is sharp.

    Edges are looked for on the 2x2 mean of the photo: sensor grain and JPEG noise make isolated
    pixels differ by GATE_EDGE_LEVELS, which put every noisy photo through the detector (all
    24 smooth 2-MP photos of benchmark 1), while a stroke of text survives the averaging.
    """
    import numpy as np

    height, width = array.shape[:2]
    if height < 2 or width < 2:
        return None
    pixels = array[: height // 2 * 2, : width // 2 * 2].astype(np.uint16)
    half = ((pixels[0::2, 0::2] + pixels[1::2, 0::2] + pixels[0::2, 1::2] + pixels[1::2, 1::2]
             + 2) // 4).astype(np.uint8)
    rows_half, cols_half = half.shape[:2]
    edges = np.zeros((rows_half, cols_half), dtype=bool)
    # 1 px apart at half scale is 2 px apart in the photo
    edges[:, :-1] = _largest_difference(half[:, 1:], half[:, :-1]) >= GATE_EDGE_LEVELS
    edges[:-1] |= _largest_difference(half[1:], half[:-1]) >= GATE_EDGE_LEVELS
    block = GATE_BLOCK // 2
    rows, cols = -(-rows_half // block), -(-cols_half // block)
    padded = np.zeros((rows * block, cols * block), dtype=bool)
    padded[:rows_half, :cols_half] = edges
    counts = padded.reshape(rows, block, cols, block).sum(axis=(1, 3))
    ys, xs = np.nonzero(counts >= GATE_EDGE_PIXELS)
    if len(ys) == 0:
        return None
    return (slice(max(0, (int(ys.min()) - 1) * GATE_BLOCK), (int(ys.max()) + 2) * GATE_BLOCK),
            slice(max(0, (int(xs.min()) - 1) * GATE_BLOCK), (int(xs.max()) + 2) * GATE_BLOCK))


def _largest_difference(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per pixel, the largest difference of `a` and `b` (uint8 RGB) over the channels. In uint8
    and channel by channel: int16 copies and `.max(axis=2)` took 30 of 32 ms at 960x720."""
    import numpy as np

    difference = np.maximum(a, b) - np.minimum(a, b)
    return np.maximum(np.maximum(difference[..., 0], difference[..., 1]), difference[..., 2])


def _detector_input(array: np.ndarray) -> np.ndarray:
    """`array` as the PP-OCR detector takes it, at its own scale: edge-padded to multiples of
    32 px, normalised to [-1, 1], NCHW float32 (what the engine's DetPreProcess does, unscaled)."""
    import numpy as np

    height, width = array.shape[:2]
    padded = np.pad(array, ((0, max(32, -(-height // 32) * 32) - height),
                            (0, max(32, -(-width // 32) * 32) - width), (0, 0)), mode="edge")
    normalised = padded.astype(np.float32) * (2 / 255) - 1
    return np.ascontiguousarray(normalised.transpose(2, 0, 1)[None])


def _pin_detection_side(detector: Any) -> None:
    """Make the detector really work at DETECT_SIDE: in "max" mode RapidOCR 1.4 ignores
    `det_limit_side_len` and picks 960, 1500 or 2000 px by the image's own size, so a 12-MP
    photo was searched for text at 2000 px (~1 s, 4x the pixels; measured 0.2 s at 960)."""
    from rapidocr_onnxruntime.ch_ppocr_det.utils import DetPreProcess

    preprocess = DetPreProcess(DETECT_SIDE, "max", detector.mean, detector.std)
    detector.get_preprocess = lambda longest_side: preprocess


def _use_fused_detector(detector: Any) -> None:
    """Run the detector's model with its elementwise chains folded into its convolutions
    (`capdex.captioners.ocr_graph`: 1.7x faster, same output up to float rounding), in a session
    made for sharing 2 cores with the captioner: its worker threads sleep when idle instead of
    spinning (they spun on the cores the tagger needed), and it reuses its buffers from photo
    to photo (RapidOCR turns that arena off; a fresh map for each photo cost page faults)."""
    import onnxruntime as ort

    from capdex.captioners.ocr_graph import fused_detector
    from capdex.settings import default_cache_dir

    source = _detector_model()
    if not source.is_file():
        log.warning("%s not found (another RapidOCR release?): its detector runs as it is", source)
        return
    model = fused_detector(source, default_cache_dir() / "ocr")
    detector.infer.session = ort.InferenceSession(
        model if isinstance(model, bytes) else str(model), detector_session_options(),
        providers=["CPUExecutionProvider"])


def detector_session_options() -> Any:
    """ONNX Runtime options for the detector's session (see `_use_fused_detector`): all graph
    optimisations, idle threads that sleep, the buffer arena on (ONNX Runtime's default)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return options


def _detector_model() -> Path:
    """The detection model RapidOCR 1.4 ships and loads (its config.yaml names it)."""
    import rapidocr_onnxruntime

    return Path(rapidocr_onnxruntime.__file__).parent / "models" / "ch_PP-OCRv4_det_infer.onnx"


def _import_engine() -> Any:
    try:
        from rapidocr_onnxruntime import RapidOCR
    except ImportError as exc:
        # opencv-python (which the engine imports) needs libGL and glib from the system.
        hint = (" (the system lacks a library OpenCV needs: apt install libgl1 libglib2.0-0)"
                if "lib" in str(exc) and ".so" in str(exc) else "")
        raise OcrUnavailable(f"{_missing_message()}; import failed: {exc}{hint}") from exc
    return RapidOCR


def _missing_message() -> str:
    # A core dependency (OCR is on by default), so this only happens in a partial install.
    return (f"OCR needs the {_PACKAGE} package, a capdex dependency: pip install {_PACKAGE} "
            "(or turn OCR off with --no-ocr / CAPDEX_OCR=false)")


_shared: dict[float, OcrEngine] = {}
_shared_lock = threading.Lock()


def shared_engine(min_confidence: float) -> OcrEngine:
    """One engine per process (per threshold): the models load once, whoever asks first."""
    with _shared_lock:
        if min_confidence not in _shared:
            _shared[min_confidence] = OcrEngine(min_confidence)
        return _shared[min_confidence]
