"""Benchmark 17a (issue 17): the default pipeline (tagger + OCR) on 12-MP camera JPEGs, with OCR
against without, as whole `capdex index` processes over the same N photos, runs alternating.

Goal: with OCR ≥ 0.6x the photos/s without, and ≥ 10 photos/s with OCR. The photos
(benchmarks/make_photos.py) show no text, as most personal photos: the OCR text gate
(capdex/captioners/ocr.py) should turn most of them away before the full read. Being smooth
gradients, they flatter the gate, so real photographs without text (Debian's wallpaper
packages, 12 MP) are measured too, and a small set with text drawn on real photos blown up to
12 MP shows what a text photo costs.

    PYTHONPATH=. python benchmarks/ocr_pipeline.py [N=300] [REPEATS=2]

Takes ~3 x N / 15 s per repeat on 2 quiet cores (N=300: ~2 min a repeat, plus ~5 min to make
the photos once). Appends its ratio lines to benchmarks/RESULTS.md.
"""

from __future__ import annotations

import sys
from pathlib import Path

from benchmarks.make_photos import camera_photos
from benchmarks.results import record
from benchmarks.tagger_throughput import WORK, capdex


#: Real photographs from Debian's wallpaper packages (apt-get install lomiri-wallpapers
#: mate-backgrounds): the synthetic photos have no sharp edges at all, which flatters the gate;
#: these are what a camera makes (sharp subjects, foliage, water, sky).
WALLPAPERS = ("/usr/share/backgrounds/*.jpg", "/usr/share/backgrounds/mate/nature/*.jpg")


def real_photos(folder: Path, copies: int = 3) -> Path | None:
    """The wallpaper photographs at 4000x3000 (cropped to 4:3, resized), each saved `copies`
    times with a different JPEG comment so every file is new content (made once); None when
    the packages are not installed."""
    import glob

    from PIL import Image

    sources = sorted(p for pattern in WALLPAPERS for p in glob.glob(pattern))
    if not sources:
        return None
    folder.mkdir(parents=True, exist_ok=True)
    for source in sources:
        name = Path(source).stem
        if (folder / f"{name}_{copies - 1}.jpg").exists():
            continue
        with Image.open(source) as opened:
            image = opened.convert("RGB")
        width, height = image.size
        if width * 3 > height * 4:  # wider than 4:3: crop the sides
            side = height * 4 // 3
            image = image.crop(((width - side) // 2, 0, (width + side) // 2, height))
        else:
            side = width * 3 // 4
            image = image.crop((0, (height - side) // 2, width, (height + side) // 2))
        image = image.resize((4000, 3000), Image.Resampling.LANCZOS)
        for copy in range(copies):
            image.save(folder / f"{name}_{copy}.jpg", quality=90, comment=f"copy {copy}".encode())
    return folder


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
    subset = camera_photos(count, WORK)
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
    real = real_photos(WORK / "photos12mp-real")
    if real is None:
        lines.append("(real photos skipped: apt-get install lomiri-wallpapers mate-backgrounds)")
    else:
        n_real = len(list(real.glob("*.jpg")))
        on, on_run, summary = capdex(real, n_real, ocr=True)
        off, off_run, _ = capdex(real, n_real, ocr=False)
        line = (f"{n_real} real photographs (Debian wallpapers at 12 MP, no text meant; "
                f"{summary['ocr_with_text']} read as showing text): OCR on {on:.1f} photos/s "
                f"whole process ({on_run:.1f} in the run; OCR worker busy "
                f"{summary['ocr_seconds']:.1f}s), OCR off {off:.1f} ({off_run:.1f}): "
                f"**{on / off:.2f}x**")
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
