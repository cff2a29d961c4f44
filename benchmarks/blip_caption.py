"""Benchmark 1: `capdex index` with BLIP-base against the model card's loop, as whole processes.

A real-size BLIP-base with random weights (benchmarks/blip_model.py) captions the same 24 photos
(1600x1200 JPEGs) both ways; wall time includes start-up and model loading on both sides. Both
generate exactly 20 new tokens greedily (min = max = 20, one beam): random weights would
otherwise stop at arbitrary lengths, and capdex's own default (3 beams, as BLIP's demo) is more
work than the model card's greedy loop, so it is set to the card's decoding for a fair ratio.
OCR is on on the capdex side, as by default (issue 17: its text gate turns these photos, which
show no text, away; the model card's loop reads no text at all).

capdex runs once with its defaults (bf16 where the CPU has it, batches) and once with
CAPDEX_TORCH_DTYPE=fp32 to show the fp32 batched path gives the card's exact captions.

    PYTHONPATH=. python benchmarks/blip_caption.py [REPEATS]

~2.5 minutes a repeat on 2 quiet cores (+1 minute to build the model once). Appends its ratio
lines to benchmarks/RESULTS.md.
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
from benchmarks.make_photos import make
from benchmarks.results import record

WORK = Path(__file__).parent / "_work"
ROOT = Path(__file__).resolve().parent.parent


def normalise(text: str) -> str:
    """What capdex stores of a decoded caption: whitespace collapsed, no edge punctuation."""
    return " ".join(text.split()).strip(" ,.:;")


def run_card(model: Path, photos: Path) -> tuple[float, dict[str, str]]:
    start = time.perf_counter()
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks/blip_modelcard.py"), str(model),
                          str(photos)], check=True, capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    seconds = time.perf_counter() - start
    captions = json.loads(out.stdout.strip().splitlines()[-1])
    return seconds, {k: normalise(v) for k, v in captions.items()}


def run_capdex(model: Path, photos: Path, data: Path, **env: str) -> tuple[float, dict[str, str]]:
    shutil.rmtree(data, ignore_errors=True)
    environ = {**os.environ, "PYTHONPATH": str(ROOT), "CAPDEX_CAPTION_BEAMS": "1",
               "CAPDEX_CAPTION_MIN_LENGTH": "20", "CAPDEX_CAPTION_MAX_LENGTH": "20", **env}
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "capdex.api.cli", "index", str(photos), "--data-dir", str(data),
                    "--captioner", "blip-base", "--model-path", str(model), "--ocr"],
                   check=True, capture_output=True, text=True, env=environ)
    seconds = time.perf_counter() - start
    import sqlite3

    with sqlite3.connect(data / "capdex.db") as db:
        rows = db.execute("SELECT files.path, captions.text FROM files JOIN captions "
                          "ON captions.photo_id = files.photo_id").fetchall()
    return seconds, {Path(p).name: t for p, t in rows}


def token_agreement(a: dict[str, str], b: dict[str, str]) -> tuple[int, float]:
    """(captions identical, share of word positions equal)."""
    same = sum(a[k] == b.get(k) for k in a)
    pairs = [(x, y) for k in a for x, y in zip(a[k].split(), b.get(k, "").split(), strict=False)]
    total = sum(max(len(a[k].split()), len(b.get(k, "").split())) for k in a)
    return same, sum(x == y for x, y in pairs) / max(1, total)


def main(repeats: int) -> None:
    model = build_blip_base(WORK / "blip-base-random")
    photos = WORK / "photos24"
    make(24, 1600, 1200, photos, seed=1, distinct=24)
    print(describe())
    lines = []
    for r in range(repeats):
        card_s, card = run_card(model, photos)
        auto_s, auto = run_capdex(model, photos, WORK / "data-blip-auto")
        fp32_s, fp32 = run_capdex(model, photos, WORK / "data-blip-fp32", CAPDEX_TORCH_DTYPE="fp32")
        same32, words32 = token_agreement(card, fp32)
        same16, words16 = token_agreement(card, auto)
        lines += [(f"run {r + 1}: model card (fp32, 1 at a time) {card_s:.1f}s "
                  f"({card_s / 24:.2f} s/photo); capdex index, OCR on, default dtype {auto_s:.1f}s "
                  f"({auto_s / 24:.2f} s/photo) = **{card_s / auto_s:.2f}x** (goal ≥ 3x); "
                  f"capdex fp32 {fp32_s:.1f}s = {card_s / fp32_s:.2f}x"),
                  (f"run {r + 1}: fp32 batched vs card: {same32}/24 captions identical, "
                  f"{words32:.1%} of words; default vs card: {same16}/24 identical, "
                  f"{words16:.1%} of words")]
        print(*lines[-2:], sep="\n", flush=True)
    record("Benchmark 1: BLIP-base, 24 photos, capdex index (OCR on, greedy) vs the model card's "
           "loop (blip_caption.py)", lines)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1)
