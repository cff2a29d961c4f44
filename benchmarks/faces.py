"""Benchmark: what finding faces costs (issue 14), on 12-megapixel JPEGs.

1. `capdex index` (whole process, OCR off) over N photos of benchmarks/make_photos.py, with and
   without `--faces`, in photos per second: the faces stage must not halve the throughput.
2. The faces stage alone per 12-MP photo: decoding at its size (1024 px, draft mode) and
   detecting, on photos without faces, and on 12-MP photos with faces (the shared face photos
   enlarged onto a 4000x3000 canvas), where each face is also described; one thread.

    PYTHONPATH=. python benchmarks/faces.py [N] [FACES_DIR]

FACES_DIR defaults to shared/data/faces beside the checkout (or /work/shared/data/faces).
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


def index(folder: Path, count: int, faces: bool) -> tuple[float, dict]:
    """(photos/s of the whole `capdex index` process, its summary)."""
    data = WORK / "data-faces"
    shutil.rmtree(data, ignore_errors=True)
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "capdex.api.cli", "index", str(folder),
                          "--data-dir", str(data), "--json", "--no-ocr",
                          "--faces" if faces else "--no-faces"],
                         check=True, capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    wall = time.perf_counter() - start
    summary = json.loads(out.stdout.strip().splitlines()[-1])
    assert summary["new"] == count and summary["failed"] == 0, summary
    return count / wall, summary


def faces_photos(source: Path, folder: Path) -> list[Path]:
    """The face photos enlarged onto 4000x3000 canvases (12 MP), made once."""
    from PIL import Image, ImageOps

    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for path in sorted(source.rglob("*.jp*g")):
        target = folder / f"{path.parent.name}_{path.stem}.jpg"
        out.append(target)
        if target.exists():
            continue
        with Image.open(path) as image:
            picture = ImageOps.exif_transpose(image).convert("RGB")
        picture = ImageOps.contain(picture, (4000, 3000), Image.Resampling.LANCZOS)
        canvas = Image.new("RGB", (4000, 3000), (128, 128, 128))
        canvas.paste(picture, ((4000 - picture.width) // 2, (3000 - picture.height) // 2))
        canvas.save(target, quality=90)
    return out


def stage_alone(paths: list[Path]) -> tuple[float, float, int]:
    """(seconds per photo decoding at the stage's size, seconds per photo finding and
    describing faces, faces found), one thread, models loaded beforehand."""
    from capdex.captioners.faces import FaceEngine
    from capdex.images import decode_image

    engine = FaceEngine()
    engine.load()
    decoding = finding = 0.0
    found = 0
    for path in paths:
        start = time.perf_counter()
        image = decode_image(path, max_pixels=200_000_000,
                             size_hint=(1, engine.detect_side)).image
        view = engine.fit(image)
        middle = time.perf_counter()
        found += len(engine.find(view))
        finding += time.perf_counter() - middle
        decoding += middle - start
    return decoding / len(paths), finding / len(paths), found


def shared_faces(argument: str | None) -> Path:
    for candidate in (argument, ROOT.parent / "shared/data/faces", "/work/shared/data/faces"):
        if candidate and Path(candidate).is_dir():
            return Path(candidate)
    sys.exit("the shared face photos are not here: pass FACES_DIR")


def main(count: int, faces_dir: Path) -> None:
    folder = WORK / "photos12mp"
    paths = make(count, 4000, 3000, folder)
    print(describe(), f"; {count} photos of 4000x3000")
    index(folder, count, faces=False)  # model caches made outside the timings
    without, _ = index(folder, count, faces=False)
    with_faces, summary = index(folder, count, faces=True)
    print(f"capdex index, OCR off: {without:.2f} photos/s without faces, {with_faces:.2f} "
          f"photos/s with --faces ({with_faces / without:.0%}); faces stage "
          f"{summary.get('faces_found', 0)} face(s) in {summary.get('faces_scanned', 0)} photos")
    decode, find, _ = stage_alone(paths[: min(count, 50)])
    print(f"faces stage alone, 12-MP photo without faces: decode {decode * 1000:.0f} ms + "
          f"detect {find * 1000:.0f} ms")
    with_people = faces_photos(faces_dir, WORK / "faces12mp")
    decode, find, found = stage_alone(with_people)
    print(f"faces stage alone, 12-MP photo with faces ({found} faces in {len(with_people)} "
          f"photos): decode {decode * 1000:.0f} ms + detect and describe {find * 1000:.0f} ms")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 200,
         shared_faces(sys.argv[2] if len(sys.argv) > 2 else None))
