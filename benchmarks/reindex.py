"""Benchmark 3: a re-index of N unchanged files (default 100,000 tiny JPEGs), in seconds.

The library is indexed once with an instant captioner, a hash "embedder" and an OCR engine that
sees no text (this benchmark is about the write path's bookkeeping, not models); the fakes carry
the default embedder's and OCR engine's names, so a plain `capdex index` finds nothing to do.
Then it is re-indexed with nothing changed, twice per repeat: in this process (`Indexer.run`)
and as a whole `capdex index` process (start-up, imports and all, default settings), against a
baseline measured in the same run: walking the tree and stat-ing every file, the least any
re-index must do. Also prints the first index's rate and this process's peak RSS.

    PYTHONPATH=. python benchmarks/reindex.py [N] [REPEATS]
"""

from __future__ import annotations

import hashlib
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from benchmarks.machine import describe
from capdex.embedder import DEFAULT_MODEL, Embedder
from capdex.settings import Settings
from capdex.captioners import Captioner, registry
from capdex.captioners.ocr import OcrEngine, OcrResult
from capdex.indexer.pipeline import Indexer
from capdex.store.db import Database

WORK = Path(__file__).parent / "_work"


class InstantCaptioner(Captioner):
    name = "bench-instant"
    batch_size = 256

    def caption_batch(self, images: Sequence[Image.Image]) -> list[str]:
        return [f"a picture of size {i.size}" for i in images]


class HashEmbedder(Embedder):
    """Deterministic unit vectors from a text's hash: no model, same shape and name as MiniLM's."""

    def __init__(self) -> None:
        super().__init__(DEFAULT_MODEL)

    @property
    def dim(self) -> int:
        return 384

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        rows = [np.random.default_rng(int(hashlib.md5(t.encode()).hexdigest()[:8], 16))
                .standard_normal(384) for t in texts]
        out = np.array(rows, dtype=np.float32).reshape(len(texts), 384)
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-9)


class BlankOcr(OcrEngine):
    """The real OCR engine's name and version, reading no text and loading no model."""

    gate_side = None  # no gate either: `read` is already free

    def check(self) -> None:
        pass

    def load(self) -> None:
        pass

    def read(self, image) -> OcrResult:
        return OcrResult("", None)


def build(root: Path, count: int) -> None:
    """`count` distinct tiny JPEGs (one encoded picture, a unique JPEG comment each)."""
    if root.exists() and sum(1 for _ in root.rglob("*.jpg")) == count:
        return
    shutil.rmtree(root, ignore_errors=True)
    root.parent.mkdir(parents=True, exist_ok=True)
    base = root.parent / "base.jpg"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (24, 32, 3), dtype=np.uint8)).save(
        base, quality=70)
    data = base.read_bytes()
    for i in range(count):
        folder = root / f"{2000 + i % 20}" / f"{(i // 20) % 50:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        comment = f"photo {i}".encode()
        segment = b"\xff\xfe" + (len(comment) + 2).to_bytes(2, "big") + comment
        (folder / f"IMG_{i:06d}.jpg").write_bytes(data[:2] + segment + data[2:])


def walk_and_stat(root: Path) -> int:
    n = 0
    for folder, _, names in os.walk(root):
        for name in names:
            os.stat(os.path.join(folder, name))
            n += 1
    return n


def main(count: int, repeats: int) -> None:
    registry.register(InstantCaptioner)
    work = WORK / f"reindex-{count}"
    root = work / "photos"
    build(root, count)
    shutil.rmtree(work / "data", ignore_errors=True)
    settings = Settings(data_dir=work / "data", captioner="bench-instant")
    db = Database(settings.db_url)
    embedder = HashEmbedder()
    print(describe(), f"; {count} tiny files")

    def run():
        return Indexer(settings, db, embedder=embedder, ocr_engine=BlankOcr()).run([root])

    repo_root = Path(__file__).resolve().parent.parent
    env = {**os.environ, "PYTHONPATH": str(repo_root)}
    env.pop("CAPDEX_CAPTIONER", None)

    def run_process() -> dict:
        out = subprocess.run([sys.executable, "-m", "capdex.api.cli", "index", str(root), "--data-dir",
                              str(settings.data_dir), "--json"], env=env, cwd=repo_root,
                             capture_output=True, text=True, check=True).stdout
        return json.loads(out.strip().splitlines()[-1])

    start = time.perf_counter()
    first = run()
    took = time.perf_counter() - start
    assert first.new == count, first.line()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"first index: {took:.1f}s = {count / took:.0f} photos/s; peak RSS so far {peak:.0f} MB")
    for r in range(repeats):
        start = time.perf_counter()
        walk_and_stat(root)
        walk = time.perf_counter() - start
        start = time.perf_counter()
        again = run()
        seconds = time.perf_counter() - start
        assert again.unchanged == count and again.new == again.changed == 0, again.line()
        start = time.perf_counter()
        whole = run_process()
        process = time.perf_counter() - start
        assert whole["unchanged"] == count and whole["new"] == whole["changed"] == 0, whole
        assert whole["reembedded"] == whole["ocr_read"] == 0, whole
        print(f"run {r + 1}: re-index of {count} unchanged files {seconds:.2f}s in-process, "
              f"{process:.2f}s as a whole `capdex index` process; baseline walk + stat "
              f"{walk:.2f}s; ratios {seconds / walk:.1f}x / {process / walk:.1f}x the walk")
        sys.stdout.flush()


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000,
         int(sys.argv[2]) if len(sys.argv) > 2 else 3)
