"""OCR engine: reading order and filtering (pure), and the real RapidOCR on skimage photos."""

from __future__ import annotations

import os

import pytest
from PIL import Image

from capdex.captioners.ocr import Fragment, OcrEngine, assemble, shared_engine


def frag(x0: float, y0: float, text: str, conf: float = 0.9, w: float = 50, h: float = 10) -> Fragment:
    return Fragment((x0, y0, x0 + w, y0 + h), text, conf)


def test_fragments_are_read_in_lines_top_to_bottom_then_left_to_right() -> None:
    result = assemble([frag(200, 41, "world"), frag(0, 100, "second line"), frag(0, 40, "hello"),
                       frag(0, 0, "Title")], min_confidence=0.5)
    assert result.text == "Title\nhello world\nsecond line"
    assert result.confidence == pytest.approx(0.9)


def test_weak_fragments_and_lone_characters_are_dropped() -> None:
    result = assemble([frag(0, 0, "receipt", 0.95), frag(0, 20, "blur", 0.3), frag(0, 40, "S="),
                       frag(0, 60, "2"), frag(0, 80, "42", 0.8)], min_confidence=0.6)
    assert result.text == "receipt\n42"
    assert result.confidence == pytest.approx((0.95 + 0.8) / 2)


def test_nothing_kept_is_no_text() -> None:
    assert assemble([frag(0, 0, "x")], 0.5).text == ""
    assert assemble([], 0.5).confidence is None


@pytest.fixture(scope="module")
def skimage_photo():
    import skimage

    folder = os.path.join(os.path.dirname(skimage.__file__), "data")
    return lambda name: Image.open(os.path.join(folder, name)).convert("RGB")


@pytest.mark.slow
def test_the_page_is_read_and_the_cat_shows_no_text(skimage_photo) -> None:
    engine = shared_engine(0.6)
    page = engine.read(skimage_photo("page.png"))
    assert "markers of the coins" in page.text
    lines = page.text.splitlines()
    assert lines[0].startswith("Region-based") and "histogram" in lines[-1]  # reading order
    assert page.confidence is not None and page.confidence > 0.8
    cat = engine.read(skimage_photo("chelsea.png"))
    assert cat.text == "" and cat.confidence is None


def test_name_and_version_say_what_read_the_text() -> None:
    engine = OcrEngine(0.7)
    assert engine.name == "rapidocr"
    assert engine.version.split()[0][0].isdigit() and engine.version.endswith("min0.7")
    assert shared_engine(0.7) is shared_engine(0.7)


def test_a_missing_engine_names_the_package_and_the_way_out(monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins

    from capdex.captioners.ocr import OcrUnavailable

    real_import = builtins.__import__

    def no_rapidocr(name, *args, **kwargs):
        if name.startswith("rapidocr_onnxruntime"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_rapidocr)
    for step in (OcrEngine().check, OcrEngine().load):
        with pytest.raises(OcrUnavailable, match=r"pip install rapidocr-onnxruntime.*--no-ocr"):
            step()


@pytest.mark.slow
def test_large_photos_are_searched_for_text_at_the_detection_side() -> None:
    """RapidOCR's own "max" mode would detect on a 2000 px photo at 2000 px; ours at 960."""
    from PIL import ImageDraw, ImageFont

    from capdex.captioners.ocr import DETECT_SIDE

    photo = Image.new("RGB", (2000, 1500), (235, 230, 220))
    font = ImageFont.load_default(size=90)
    ImageDraw.Draw(photo).text((150, 600), "FRESH BREAD DAILY", fill=(20, 20, 20), font=font)
    engine = OcrEngine(0.6)
    engine.load()
    detector = engine._engine.text_det
    seen: list[tuple[int, ...]] = []
    infer = detector.infer
    detector.infer = lambda batch: seen.append(batch.shape) or infer(batch)
    result = engine.read(photo)
    assert seen and max(seen[0][2:]) <= DETECT_SIDE, seen
    assert "FRESH BREAD DAILY" in result.text.upper(), result.text
