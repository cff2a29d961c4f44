"""The OCR text gate (issue 17): cheap where there is no text, and it misses no text photo —
every photo of the samples and the OCR test set on which RapidOCR's own full read finds text is
read as the indexer reads it (lines found on the gate's view, recognised on the larger decode)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from benchmarks.make_photos import make
from capdex.captioners.ocr import DETECT_SIDE, OcrEngine, sharp_region
from capdex.images import decode_image
from capdex.samples import SAMPLES, write_samples
from tests.captioners.ocr_photos import _package_file, build, draw_text

MAX_PIXELS = 200_000_000
OCR_MAX_SIDE = 2000  # Settings().ocr_max_side


def test_smooth_photos_have_no_sharp_region_and_text_is_inside_its_region() -> None:
    ys, xs = np.mgrid[0:480, 0:640]
    smooth = np.stack([xs * 255 // 640, ys * 255 // 480, np.full_like(xs, 90)], axis=2)
    grain = np.random.default_rng(0).normal(0, 2.5, smooth.shape)
    photo = np.clip(smooth + grain, 0, 255).astype(np.uint8)
    assert sharp_region(photo) is None
    with_text = np.asarray(draw_text(Image.fromarray(photo), ("Platform 4",), 0.05, False, 3))
    region = sharp_region(with_text)
    assert region is not None
    changed_rows, changed_cols = np.nonzero((with_text != photo).any(axis=2))
    assert region[0].start <= changed_rows.min() and changed_rows.max() < region[0].stop
    assert region[1].start <= changed_cols.min() and changed_cols.max() < region[1].stop


def test_a_photo_without_sharp_edges_is_rejected_without_loading_the_model(tmp_path: Path) -> None:
    engine = OcrEngine()
    path = make(1, 4000, 3000, tmp_path)[0]
    view = decode_image(path, max_pixels=MAX_PIXELS, size_hint=(1, DETECT_SIDE)).image
    assert not engine.has_text(view)
    assert engine._engine is None
    assert OcrEngine(gate=False).has_text(view)  # no gate: everything is read


def test_grain_alone_is_not_a_sharp_edge(tmp_path: Path) -> None:
    """A smooth 2-MP photo with sensor-like grain (sigma 9 levels) has pixels 24 levels apart
    everywhere; before the gate averaged 2x2 blocks, it ran the detector on every such photo."""
    path = make(1, 1600, 1200, tmp_path, seed=1, distinct=1)[0]
    view = decode_image(path, max_pixels=MAX_PIXELS, size_hint=(1, DETECT_SIDE)).image
    view.thumbnail((DETECT_SIDE, DETECT_SIDE))
    array = np.asarray(view.convert("RGB"))
    assert sharp_region(array) is None
    with_text = np.asarray(draw_text(view.copy(), ("Exit 12",), 0.03, False, 5))
    assert sharp_region(with_text) is not None


def _view(path: Path, side: int) -> Image.Image:
    image = decode_image(path, max_pixels=MAX_PIXELS, size_hint=(1, side)).image
    image.thumbnail((side, side))
    return image


def gated_read(engine: OcrEngine, path: Path) -> str:
    """The text of `path` as the OCR stage reads it: lines found on the view at the gate's side,
    recognised on the photo decoded at OCR_MAX_SIDE."""
    view = _view(path, DETECT_SIDE)
    found = engine.find_text(view)
    if found is None:
        return ""
    return engine.read(_view(path, OCR_MAX_SIDE) if max(view.size) >= DETECT_SIDE else view,
                       found).text


def _reads(paths: list[Path]) -> tuple[dict[str, str], list[str]]:
    """{photo: text a full read finds} for the photos it finds text on, and the photos among
    them the gated read finds no text on — each decoded as the indexer decodes it."""
    engine, full = OcrEngine(), OcrEngine(gate=False)
    found: dict[str, str] = {}
    missed: list[str] = []
    for path in paths:
        text = full.read(_view(path, OCR_MAX_SIDE)).text
        if not text:
            continue
        found[path.name] = text
        if not gated_read(engine, path):
            missed.append(f"{path.name}: {text[:40]!r}")
    return found, missed


def test_a_photo_with_text_is_searched_for_text_once(tmp_path: Path, monkeypatch) -> None:
    """The gate's detection is the read's: lines found on the view are recognised on the larger
    decode without running the detector again (it did, ~0.15 s a photo at 12 MP)."""
    engine = OcrEngine()
    engine.load()
    path = tmp_path / "sign.jpg"
    with Image.open(_package_file("skimage", "data/coffee.png")) as opened:
        photo = opened.convert("RGB").resize((4000, 3000))
    draw_text(photo, ("Fresh coffee", "Espresso 2.50"), 0.05, True, 4).save(path, quality=90)
    detector = engine._engine.text_det
    calls = []
    infer = detector.infer
    monkeypatch.setattr(detector, "infer", lambda x: calls.append(x.shape) or infer(x))
    text = gated_read(engine, path)
    assert "coffee" in text.lower() and "espresso" in text.lower()
    assert len(calls) == 1 and max(calls[0][2:]) <= DETECT_SIDE + 32


def test_strips_get_the_engines_own_letterbox(tmp_path: Path, monkeypatch) -> None:
    """A banner much wider than high is padded above and below before detection, as RapidOCR's
    own pipeline pads it: without the room, the detector found no line on a Debian doc's 493x58
    banner (in the OCR test set where the docs are installed)."""
    engine = OcrEngine()
    engine.load()
    banner = Image.new("RGB", (493, 58), (250, 250, 250))
    banner.paste((60, 130, 50), (0, 0, 493, 5))  # a bar across the top, as on that banner
    draw_text(banner, ("node",), 0.6, False, 6).save(tmp_path / "banner.png")
    detector = engine._engine.text_det
    heights = []
    infer = detector.infer
    monkeypatch.setattr(detector, "infer", lambda x: heights.append(x.shape[2]) or infer(x))
    assert engine.find_text(_view(tmp_path / "banner.png", DETECT_SIDE)) is not None
    # RapidOCR's rule: rows up to max(width / 8, 30) x 2, i.e. 61 x 2 = 122 for 493 px wide
    assert heights and heights[0] >= 122


@pytest.mark.slow
def test_the_gate_passes_every_sample_photo_with_text(tmp_path: Path) -> None:
    found, missed = _reads(write_samples(tmp_path, SAMPLES))
    assert "segmentation" in found["page-of-text.png"]
    assert missed == []


@pytest.mark.slow
def test_the_gate_passes_every_text_photo_of_the_ocr_test_set(tmp_path: Path) -> None:
    paths = build(tmp_path)
    found, missed = _reads(paths)
    # every photo with drawn text, the scanned page, the logo, the docs' screenshots and plots
    assert sum(name.startswith("drawn-") for name in found) >= 75, sorted(found)
    assert len(found) >= 95, sorted(found)
    assert missed == [], f"the gate missed {len(missed)} of {len(found)} text photos: {missed}"
