"""Benchmark 2: the default tagger end to end on 12-megapixel JPEGs, in photos per second.

`capdex index` (a whole process: scan, hash, decode in draft mode, thumbnails, caption in
batches, embed, commit) over N photos, against a naive loop measured in the same run: full
decode of each file, then the tagger on that one image (the model already loaded, so the naive
side is flattered). Also in the same run: decoding alone (draft mode, all CPUs), the floor any
pipeline must pay for these files, and a slice indexed with OCR on (OCR reads each photo again;
it has its own benchmark, benchmarks/ocr.py). Photos come from benchmarks/make_photos.py.

    PYTHONPATH=. python benchmarks/tagger_throughput.py [N] [NAIVE_N]
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.machine import describe
from benchmarks.make_photos import make

WORK = Path(__file__).parent / "_work"
ROOT = Path(__file__).resolve().parent.parent


def naive(paths: list[Path]) -> float:
    """Photos per second of: full decode, tag one image, next."""
    from PIL import Image

    from capdex.settings import Settings
    from capdex.captioners.tagger import TaggerCaptioner

    tagger = TaggerCaptioner(Settings(data_dir=WORK / "data-tagger-naive"))
    tagger.caption_batch([Image.new("RGB", (224, 224))])  # load the model outside the timing
    start = time.perf_counter()
    for path in paths:
        with Image.open(path) as image:
            tagger.caption_batch([image.convert("RGB")])
    return len(paths) / (time.perf_counter() - start)


def decode_floor(paths: list[Path]) -> float:
    """Photos per second of only decoding the files as capdex does (draft mode to the model's
    and the thumbnail's size), in as many threads as CPUs: the least any pipeline must do."""
    from concurrent.futures import ThreadPoolExecutor

    from capdex.images import decode_image

    def decode(path: Path) -> None:
        decode_image(path, max_pixels=200_000_000, size_hint=(224, 384))

    start = time.perf_counter()
    with ThreadPoolExecutor(len(os.sched_getaffinity(0))) as pool:
        list(pool.map(decode, paths))
    return len(paths) / (time.perf_counter() - start)


def capdex(folder: Path, count: int, ocr: bool = False) -> tuple[float, float, dict]:
    """(photos/s of the whole process, photos/s of the run itself, summary)."""
    data = WORK / "data-tagger"
    shutil.rmtree(data, ignore_errors=True)
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "capdex.api.cli", "index", str(folder), "--data-dir",
                          str(data), "--json", "--ocr" if ocr else "--no-ocr"],
                         check=True, capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    wall = time.perf_counter() - start
    summary = json.loads(out.stdout.strip().splitlines()[-1])
    assert summary["new"] == count and summary["failed"] == 0, summary
    return count / wall, count / summary["seconds"], summary


def main(count: int, naive_count: int, repeats: int = 2, ocr_count: int = 100) -> None:
    folder = WORK / "photos12mp"
    ocr_count = min(ocr_count, count)
    paths = make(count, 4000, 3000, folder)
    print(describe(), f"; {count} photos of 4000x3000")
    # The model's weights cache is made on first use; do it outside the timings.
    naive(paths[:1])
    print(f"file size: {sum(p.stat().st_size for p in paths) / len(paths) / 1e6:.1f} MB on average")
    for r in range(repeats):
        base = naive(paths[:naive_count])
        floor = decode_floor(paths)
        proc, run, summary = capdex(folder, count)
        print(f"run {r + 1}: naive {base:.1f} photos/s (over {naive_count}); decoding alone "
              f"{floor:.1f} photos/s; capdex index (OCR off) {proc:.1f} photos/s whole process, "
              f"{run:.1f} photos/s in the run ({summary['seconds']:.1f}s) = {proc / base:.1f}x / "
              f"{run / base:.1f}x naive, {proc / floor:.0%} of decoding alone")
        sys.stdout.flush()
    # OCR (on by default) reads every photo once more; shown on a slice for its share.
    subset = WORK / "photos12mp-ocr"
    subset.mkdir(exist_ok=True)
    for path in paths[:ocr_count]:
        if not (subset / path.name).exists():
            os.link(path, subset / path.name)
    proc, run, summary = capdex(subset, ocr_count, ocr=True)
    print(f"with OCR on, {ocr_count} photos: {proc:.1f} photos/s whole process, {run:.1f} in the "
          f"run, of which OCR {summary['ocr_seconds']:.1f}s of {summary['seconds']:.1f}s")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1000,
         int(sys.argv[2]) if len(sys.argv) > 2 else 100)
