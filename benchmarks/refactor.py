"""Benchmark 18 (issue 18): today's write path against the code from before it was reshaped into
stages, as whole `capdex index` processes over the same photos, runs alternating, in one run.

BASE is a checkout of the old code (its packages were top-level: `python -m api.cli`), e.g.

    git worktree add /tmp/base 9e2b4dc     # the last commit before the write-path refactor
    PYTHONPATH=. python benchmarks/refactor.py /tmp/base [N=300] [REPEATS=2]
    git worktree remove /tmp/base

Both sides run with OCR off, so only the write path differs (with OCR on the old code decoded
and embedded every photo twice; the new one once, behind the text gate):
- tagger (the default captioner): N 12-MP JPEGs (benchmarks/make_photos.py), as
  benchmarks/tagger_throughput.py;
- BLIP-base (real size, random weights: benchmarks/blip_model.py): 24 photos of 1600x1200,
  greedy, exactly 20 new tokens, as benchmarks/blip_caption.py.

Goal: no slower (ratio new/old ≥ 1.0 within the spread of the repeats). Appends to RESULTS.md.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.blip_model import build_blip_base
from benchmarks.machine import describe
from benchmarks.make_photos import camera_photos, make
from benchmarks.results import record

WORK = Path(__file__).parent / "_work"
ROOT = Path(__file__).resolve().parent.parent
BLIP_ENV = {"CAPDEX_CAPTION_BEAMS": "1", "CAPDEX_CAPTION_MIN_LENGTH": "20",
            "CAPDEX_CAPTION_MAX_LENGTH": "20"}


def index(tree: Path, module: str, folder: Path, count: int, *args: str,
          env: dict[str, str] | None = None) -> tuple[float, float]:
    """Seconds of one whole `capdex index` process of `tree` over `folder` (a fresh data dir),
    and of its run alone (the summary's `seconds`: after start-up)."""
    data = WORK / "data-refactor"
    shutil.rmtree(data, ignore_errors=True)
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", module, "index", str(folder), "--data-dir",
                          str(data), "--json", "--no-ocr", *args],
                         check=True, capture_output=True, text=True, cwd=tree,
                         env={**os.environ, "PYTHONPATH": str(tree), **(env or {})})
    seconds = time.perf_counter() - start
    summary = json.loads(out.stdout.strip().splitlines()[-1])
    assert summary["new"] == count and summary["failed"] == 0, summary
    return seconds, summary["seconds"]


def check_base(base: Path) -> None:
    """The old side must import its own code, not this tree's installed package."""
    out = subprocess.run([sys.executable, "-c", "import api.cli, capdex; print(capdex.__file__)"],
                         check=True, capture_output=True, text=True, cwd=base,
                         env={**os.environ, "PYTHONPATH": str(base)})
    assert out.stdout.strip().startswith(str(base.resolve())), out.stdout


def main(base: Path, count: int, repeats: int) -> None:
    base = base.resolve()
    check_base(base)
    old_commit = subprocess.run(["git", "-C", str(base), "rev-parse", "--short", "HEAD"],
                                check=True, capture_output=True, text=True).stdout.strip()
    new_commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                                check=True, capture_output=True, text=True).stdout.strip()
    subset = camera_photos(count, WORK)
    model = build_blip_base(WORK / "blip-base-random")
    blip_photos = WORK / "photos24"
    make(24, 1600, 1200, blip_photos, seed=1, distinct=24)
    print(describe(), f"; old {old_commit}, new {new_commit}", flush=True)
    blip_args = ("--captioner", "blip-base", "--model-path", str(model))
    lines = [f"old = {old_commit} (before the refactor), new = {new_commit}; OCR off on both"]
    # The new side's embedder export is made once per machine (a user cache): not in the timings.
    index(ROOT, "capdex.api.cli", blip_photos, 24)
    for r in range(repeats):
        (old_t, old_tr), (new_t, new_tr) = (index(base, "api.cli", subset, count),
                                            index(ROOT, "capdex.api.cli", subset, count))
        (old_b, old_br), (new_b, new_br) = (
            index(base, "api.cli", blip_photos, 24, *blip_args, env=BLIP_ENV),
            index(ROOT, "capdex.api.cli", blip_photos, 24, *blip_args, env=BLIP_ENV))
        lines.append(f"run {r + 1}: tagger, {count} 12-MP JPEGs: old {count / old_t:.1f} photos/s, "
                     f"new {count / new_t:.1f} = **{old_t / new_t:.2f}x** (in the run "
                     f"{count / old_tr:.1f} vs {count / new_tr:.1f} = {old_tr / new_tr:.2f}x); "
                     f"BLIP-base, 24 photos (greedy, 20 tokens): old {old_b:.1f} s, new "
                     f"{new_b:.1f} s = **{old_b / new_b:.2f}x** (in the run {old_br:.1f} vs "
                     f"{new_br:.1f} s = {old_br / new_br:.2f}x); goal ≥ 1.0x, no slower")
        print(lines[-1], flush=True)
    record("Benchmark 18: write path after the refactor vs before, tagger and BLIP "
           "(refactor.py)", lines)


if __name__ == "__main__":
    main(Path(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 300,
         int(sys.argv[3]) if len(sys.argv) > 3 else 2)
