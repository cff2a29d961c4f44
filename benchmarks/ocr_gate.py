"""Benchmark 17b (issue 17): the OCR text gate on the OCR test set — its misses and what it costs.

Every photo of the OCR test set (tests/captioners/ocr_photos.py: the samples, package images,
Debian docs' screenshots and plots, text drawn on real photos, some at 12 MP) and 20 12-MP
photos without text (benchmarks/make_photos.py) are decoded as the indexer decodes them; each is
read in full (no gate: the baseline, in the same run) and put to the gate. A miss is a photo the
full read finds text on and the gate turns away; OCR's recall is unchanged when there are none.

    PYTHONPATH=. python benchmarks/ocr_gate.py

~3 minutes on 2 quiet cores. Appends its lines to benchmarks/RESULTS.md.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

from benchmarks.make_photos import make
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
        paths = build(work) + make(20, 4000, 3000, WORK / "photos12mp")[:20]
        found = missed = passed_without = 0
        gate_s: dict[bool, list[float]] = {True: [], False: []}
        read_s: dict[bool, list[float]] = {True: [], False: []}
        for path in paths:
            image = decode_image(path, max_pixels=MAX_PIXELS, size_hint=(1, side)).image
            image.thumbnail((side, side))
            view = decode_image(path, max_pixels=MAX_PIXELS, size_hint=(1, DETECT_SIDE)).image
            view.thumbnail((DETECT_SIDE, DETECT_SIDE))  # what the gate sees (OcrStage.prepare)
            started = time.perf_counter()
            text = full.read(image).text
            read = time.perf_counter() - started
            started = time.perf_counter()
            passes = gated.has_text(view)
            gate = time.perf_counter() - started
            shows = bool(text)
            found += shows
            missed += shows and not passes
            passed_without += passes and not shows
            gate_s[shows].append(gate)
            read_s[shows].append(read)
            if shows and not passes:
                print(f"MISSED {path.name}: {text[:60]!r}")
    finally:
        shutil.rmtree(work, ignore_errors=True)

    def mean(xs: list[float]) -> float:
        return sum(xs) / max(1, len(xs))

    without = len(paths) - found
    lines = [
        (f"{len(paths)} photos, {found} on which a full read finds text: the gate missed "
        f"**{missed}** (OCR's recall on them unchanged: {'yes' if missed == 0 else 'no'}); "
        f"it passed {passed_without} of the {without} without text (they get the full read)"),
        (f"photos without text: gate {mean(gate_s[False]) * 1000:.0f} ms vs full read "
        f"{mean(read_s[False]) * 1000:.0f} ms each (**{mean(read_s[False]) / max(1e-9, mean(gate_s[False])):.1f}x** "
        "cheaper; decoding not included)"),
        (f"photos with text: gate {mean(gate_s[True]) * 1000:.0f} ms on top of the full read "
        f"{mean(read_s[True]) * 1000:.0f} ms"),
    ]
    for line in lines:
        print(line)
    record("Benchmark 17b: OCR text gate on the OCR test set (ocr_gate.py)", lines)


if __name__ == "__main__":
    main()
