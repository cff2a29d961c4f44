"""Benchmark 17a (issue 17): the default pipeline (tagger + OCR) on 12-MP camera JPEGs, with OCR
against without, as whole `capdex index` processes over the same N photos, runs alternating.

Goal: with OCR ≥ 0.6x the photos/s without, and ≥ 10 photos/s with OCR. The photos
(benchmarks/make_photos.py) show no text, as most personal photos: the OCR text gate
(capdex/captioners/ocr.py) should turn most of them away before the full read. A second, small
set with text drawn on real photos blown up to 12 MP shows what a text photo costs.

    PYTHONPATH=. python benchmarks/ocr_pipeline.py [N=300] [REPEATS=2]

Takes ~3 x N / 15 s per repeat on 2 quiet cores (N=300: ~2 min a repeat, plus ~5 min to make
the photos once). Appends its ratio lines to benchmarks/RESULTS.md.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from benchmarks.make_photos import make
from benchmarks.results import record
from benchmarks.tagger_throughput import WORK, capdex


def text_photos(folder: Path, count: int = 12) -> Path:
    """`count` 12-MP JPEGs of real photos with a sign or label drawn on them (made once)."""
    from PIL import Image

    from tests.captioners.ocr_photos import BASE_PHOTOS, PHRASES, _package_file, draw_text

    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        target = folder / f"text_{i:03d}.jpg"
        if target.exists():
            continue
        module, resource = BASE_PHOTOS[i % len(BASE_PHOTOS)]
        source = _package_file(module, resource)
        assert source is not None, f"{module} is needed for the text photos"
        with Image.open(source) as opened:
            base = opened.convert("RGB").resize((4000, 3000), Image.Resampling.BICUBIC)
        draw_text(base, PHRASES[i % len(PHRASES)], 0.04, i % 2 == 0, i).save(target, quality=90)
    return folder


def main(count: int, repeats: int) -> None:
    folder = WORK / "photos12mp"
    make(count, 4000, 3000, folder)
    subset = WORK / f"photos12mp-{count}"
    subset.mkdir(exist_ok=True)
    for path in sorted(folder.glob("*.jpg"))[:count]:
        if not (subset / path.name).exists():
            os.link(path, subset / path.name)
    texts = text_photos(WORK / "photos12mp-text")
    lines = []
    for r in range(repeats):
        off, off_run, _ = capdex(subset, count, ocr=False)
        on, on_run, summary = capdex(subset, count, ocr=True)
        line = (f"run {r + 1}, {count} 12-MP JPEGs without text: OCR on {on:.1f} photos/s whole "
                f"process ({on_run:.1f} in the run; OCR worker busy {summary['ocr_seconds']:.1f}s, "
                f"{summary['ocr_with_text']} with text), OCR off {off:.1f} ({off_run:.1f}): "
                f"**{on / off:.2f}x** (goal ≥ 0.6x and ≥ 10 photos/s with OCR)")
        print(line, flush=True)
        lines.append(line)
    n_text = len(list(texts.glob("*.jpg")))
    on, on_run, summary = capdex(texts, n_text, ocr=True)
    off, off_run, _ = capdex(texts, n_text, ocr=False)
    line = (f"{n_text} 12-MP photos with a sign drawn on: OCR on {on:.2f} photos/s whole process, "
            f"off {off:.2f} ({on / off:.2f}x); OCR found text on {summary['ocr_with_text']}")
    print(line)
    lines.append(line)
    record("Benchmark 17a: default pipeline, OCR on vs off, 12-MP JPEGs (ocr_pipeline.py)", lines)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 300, int(sys.argv[2]) if len(sys.argv) > 2 else 2)
