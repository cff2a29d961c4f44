"""Synthetic but photo-like JPEGs for the benchmarks, made once into benchmarks/_work/.

Smooth colour gradients plus grain, so JPEG sizes and decode cost resemble camera files
(a flat or pure-noise image would decode unrealistically fast or slow). Encoding 12 MP takes
about a second, so `distinct` pictures are drawn and the rest are byte-different copies (a JPEG
comment naming the copy): every file is new content to the indexer and costs a full decode.

    PYTHONPATH=. python benchmarks/make_photos.py COUNT WIDTH HEIGHT FOLDER
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
from PIL import Image


def make(count: int, width: int, height: int, folder: Path, seed: int = 0,
         distinct: int = 50) -> list[Path]:
    """`count` JPEGs of `width`x`height` in `folder`; existing ones are kept (made once)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    # One grain tile reused with offsets: making 12 MP of fresh noise per photo is the slow part.
    grain = rng.normal(0, 9, size=(height + 64, width + 64, 1)).astype(np.float32)
    ys = np.linspace(0, 1, height, dtype=np.float32)[:, None]
    xs = np.linspace(0, 1, width, dtype=np.float32)[None, :]
    paths = []
    for i in range(count):
        path = folder / f"photo_{i:05d}.jpg"
        paths.append(path)
        if path.exists():
            continue
        if i >= distinct:
            data = paths[i % distinct].read_bytes()
            comment = f"copy {i}".encode()
            segment = b"\xff\xfe" + (len(comment) + 2).to_bytes(2, "big") + comment
            path.write_bytes(data[:2] + segment + data[2:])  # after SOI: still a valid JPEG
            continue
        a, b, c = rng.uniform(0, 255, size=(3, 3)).astype(np.float32)
        fx, fy = rng.uniform(1, 6, size=2)
        wave = (np.sin(xs * fx * 3.1 + ys * fy * 2.3) * 0.5 + 0.5)[..., None]
        pixels = a + (b - a) * ys[..., None] + (c - a) * xs[..., None] * wave
        dy, dx = rng.integers(0, 64, size=2)
        pixels = pixels + grain[dy : dy + height, dx : dx + width]
        Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(path, quality=90)
    return paths


def camera_photos(count: int, work: Path) -> Path:
    """A folder of exactly `count` 12-MP JPEGs: hard links to the first `count` of the shared
    `work`/photos12mp (made once), so runs of different sizes reuse the same files."""
    folder = work / "photos12mp"
    make(count, 4000, 3000, folder)
    subset = work / f"photos12mp-{count}"
    subset.mkdir(exist_ok=True)
    for path in sorted(folder.glob("*.jpg"))[:count]:
        if not (subset / path.name).exists():
            os.link(path, subset / path.name)
    return subset


if __name__ == "__main__":
    n, w, h, out = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), Path(sys.argv[4])
    make(n, w, h, out)
