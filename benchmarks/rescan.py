"""How much a re-run costs when little changed: "never redo work it does not have to".

Builds a library of N small photos, indexes it once (an instant fake captioner, the real
embedder), then times re-runs against a baseline measured in the same run: walking the tree and
stat-ing every file (the least any rescan must do).

    PYTHONPATH=. python benchmarks/rescan.py [N]
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from capdex.embedder import Embedder
from capdex.settings import Settings
from capdex.captioners import Captioner, registry
from capdex.indexer.pipeline import Indexer
from capdex.store.db import Database


class InstantCaptioner(Captioner):
    name = "bench-instant"
    batch_size = 64

    def caption_batch(self, images: Sequence[Image.Image]) -> list[str]:
        return [f"a picture with mean {int(np.asarray(i).mean())}" for i in images]


def build(root: Path, count: int) -> None:
    rng = np.random.default_rng(0)
    for i in range(count):
        folder = root / f"{2000 + i % 20}" / f"{i % 12:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        pixels = rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"IMG_{i:05d}.jpg", quality=70)


def walk_and_stat(root: Path) -> int:
    n = 0
    for folder, _, names in os.walk(root):
        for name in names:
            os.stat(os.path.join(folder, name))
            n += 1
    return n


def timed(label: str, fn, baseline: float | None = None):
    started = time.perf_counter()
    result = fn()
    seconds = time.perf_counter() - started
    ratio = f"  ({seconds / baseline:.1f}x the walk)" if baseline else ""
    print(f"{label:<46} {seconds:8.3f} s{ratio}")
    return seconds, result


def main(count: int) -> None:
    registry.register(InstantCaptioner)
    work = Path(tempfile.mkdtemp(prefix="capdex-bench-"))
    root = work / "photos"
    build(root, count)
    settings = Settings(data_dir=work / "data", captioner="bench-instant")
    db = Database(settings.db_url)
    embedder = Embedder("all-MiniLM-L6-v2")
    embedder.embed(["warm up"])

    def run():
        return Indexer(settings, db, embedder=embedder).run([root])

    print(f"{count} photos in {work}")
    _, first = timed("first run (caption + embed everything)", run)
    walk, _ = timed("baseline: os.walk + stat of every file", lambda: walk_and_stat(root))
    _, noop = timed("re-run, nothing changed", run, walk)
    assert noop.new == noop.changed == noop.moved == 0 and noop.unchanged == count
    touched = list(root.rglob("*.jpg"))[:: 100]
    for path in touched:
        os.utime(path, ns=(1, 1_000_000_000))
    _, touch = timed(f"re-run, {len(touched)} files touched (mtime only)", run, walk)
    assert touch.new == 0
    shutil.move(root / "2000", root / "moved-2000")
    _, moved = timed("re-run, one folder moved", run, walk)
    assert moved.new == 0 and moved.moved > 0
    print(f"moved {moved.moved}, re-captioned {moved.new + touch.new + noop.new} (must be 0)")
    shutil.rmtree(work)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 5000)
