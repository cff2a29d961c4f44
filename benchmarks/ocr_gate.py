"""Benchmark 17b (issue 17): the OCR text gate on the OCR test set — its misses and what it costs.

Every photo of the OCR test set (tests/captioners/ocr_photos.py: the samples, package images,
Debian docs' screenshots and plots, text drawn on real photos, some at 12 MP) and 20 12-MP
photos without text (benchmarks/make_photos.py) are decoded as the indexer decodes them; each is
read in full by RapidOCR's own pipeline (no gate: the baseline, in the same run) and as the
indexer reads it (the gate's lines, recognised). A miss is a photo the full read finds text on
and the gated read finds none on; OCR's recall is unchanged when there are none. The Debian
wallpapers (real photographs, where installed) are timed too.

    PYTHONPATH=. python benchmarks/ocr_gate.py

~3 minutes on 2 quiet cores. Appends its lines to benchmarks/RESULTS.md.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

from benchmarks.make_photos import make
from benchmarks.ocr_pipeline import real_photos
from benchmarks.results import record
from benchmarks.tagger_throughput import WORK

MAX_PIXELS = 200_000_000


def main() -> None:
    from capdex.captioners.ocr import DETECT_SIDE, OcrEngine
    from capdex.images import decode_image
    from capdex.settings import Settings
    from tests.captioners.ocr_photos import build

    side = Settings().ocr_max_side
    gated, full = OcrEngine(), OcrEngine(gate=False)
    gated.load()
    full.load()
    work = Path(tempfile.mkdtemp(prefix="capdex-ocr-gate-"))
    try:
        real = real_photos(WORK / "photos12mp-real")
        wallpapers = sorted(real.glob("*_0.jpg")) if real else []
        paths = build(work) + make(20, 4000, 3000, WORK / "photos12mp")[:20] + wallpapers
        found = missed = passed_without = 0
        gate_s: dict[str, list[float]] = {"text": [], "none": [], "real": []}
        read_s: dict[str, list[float]] = {"text": [], "none": [], "real": []}
        for path in paths:
            image = decode_image(path, max_pixels=MAX_PIXELS, size_hint=(1, side)).image
            image.thumbnail((side, side))
            view = decode_image(path, max_pixels=MAX_PIXELS, size_hint=(1, DETECT_SIDE)).image
            view.thumbnail((DETECT_SIDE, DETECT_SIDE))  # what the gate sees (OcrStage.prepare)
            started = time.perf_counter()
            text = full.read(image).text
            read = time.perf_counter() - started
            started = time.perf_counter()  # as OcrStage.run: lines found, then recognised
            lines = gated.find_text(view)
            gated_text = gated.read(image, lines).text if lines is not None else ""
            gate = time.perf_counter() - started
            shows = bool(text)
            found += shows
            missed += shows and not gated_text
            passed_without += lines is not None and not shows
            kind = "text" if shows else "real" if path in wallpapers else "none"
            gate_s[kind].append(gate)
            read_s[kind].append(read)
            if shows and not gated_text:
                print(f"MISSED {path.name}: {text[:60]!r}")
    finally:
        shutil.rmtree(work, ignore_errors=True)

    def mean(xs: list[float]) -> float:
        return sum(xs) / max(1, len(xs))

    def compare(kind: str) -> str:
        gate, read = mean(gate_s[kind]), mean(read_s[kind])
        return (f"gated read {gate * 1000:.0f} ms vs full read {read * 1000:.0f} ms each "
                f"(**{read / max(1e-9, gate):.1f}x** cheaper; decoding not included)")

    without = len(paths) - found
    lines = [
        (f"{len(paths)} photos, {found} on which RapidOCR's full read finds text: the gated read "
         f"(lines found on the {DETECT_SIDE}-px view around its sharp edges, recognised on the "
         f"{side}-px decode) missed **{missed}** (OCR's recall on them unchanged: "
         f"{'yes' if missed == 0 else 'no'}); it found lines on {passed_without} of the "
         f"{without} without text (recognition then drops them)"),
        f"photos without text (OCR test set and synthetic 12 MP): {compare('none')}",
        (f"{len(wallpapers)} real photographs without text (Debian wallpapers at 12 MP): "
         f"{compare('real')}"),
        f"photos with text: {compare('text')}",
    ]
    for line in lines:
        print(line)
    record("Benchmark 17b: OCR text gate on the OCR test set (ocr_gate.py)", lines)


if __name__ == "__main__":
    main()
