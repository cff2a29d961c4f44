"""OCR (issue 10): time per photo, and how to embed a photo's text — measured, not guessed.

A library of the sample photos (no text, but the handwritten maths), skimage's page of text, and
eight photos with text drawn by PIL (a receipt, a street sign, a slide, a whiteboard, ...), indexed
with the real default tagger and the real MiniLM embedder. Then, for queries about the text
photos show and queries about what photos show, three ways to embed:

- caption only (no OCR in search at all: the baseline),
- one vector: "<caption> Text: <first 40 words>" (what capdex does),
- two vectors per photo, caption and text, a photo scoring the better of the two.

Caption time per photo (the tagger) is the baseline OCR time is compared with, in the same run.

    PYTHONPATH=. python benchmarks/ocr.py
"""

from __future__ import annotations

import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from sqlalchemy import select

from capdex.embedder import Embedder
from capdex.images import load_image
from capdex.samples import write_samples
from capdex.settings import Settings
from capdex.captioners import registry
from capdex.captioners.ocr import shared_engine
from capdex.indexer.embed import embedding_text
from capdex.indexer.pipeline import Indexer
from capdex.store.db import Database
from capdex.store.models import Caption, File, OcrText

FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"

#: name: (background, text colour, lines)
TEXT_PHOTOS = {
    "receipt.png": ((250, 248, 240), (20, 20, 20), ["CORNER GROCERY", "Milk 2L 1.89", "Sourdough bread 3.40",
                                                   "Free range eggs 2.95", "TOTAL 8.24", "Thank you for shopping"]),
    "street-sign.png": ((20, 90, 40), (255, 255, 255), ["Baker Street", "Camden Town 2 miles"]),
    "slide.png": ((255, 255, 255), (10, 40, 120), ["Quarterly revenue review", "Sales grew 12 percent",
                                                  "Hiring plan for next year"]),
    "whiteboard.png": ((235, 235, 230), (30, 30, 160), ["Sprint planning", "fix login timeout bug",
                                                       "release on Friday"]),
    "poster.png": ((200, 30, 40), (255, 240, 200), ["Summer jazz festival", "Live music in the park",
                                                   "August 14"]),
    "screenshot.png": ((245, 245, 245), (40, 40, 40), ["Your flight to Lisbon is confirmed",
                                                      "Boarding pass gate B22", "Seat 14A"]),
    "menu.png": ((60, 40, 30), (240, 220, 180), ["Daily specials", "Mushroom risotto", "Lemon tart"]),
    "notice.png": ((255, 255, 200), (0, 0, 0), ["Wet paint", "Please do not touch"]),
}

#: query: the photo that should come first (text the photos show, in other words or in part).
TEXT_QUERIES = {
    "markers of the coins": "page.png",
    "region-based segmentation": "page.png",
    "grocery receipt total": "receipt.png",
    "sourdough bread and eggs": "receipt.png",
    "Baker Street": "street-sign.png",
    "quarterly revenue": "slide.png",
    "hiring plan": "slide.png",
    "login timeout bug": "whiteboard.png",
    "sprint planning": "whiteboard.png",
    "jazz festival": "poster.png",
    "live music in the park": "poster.png",
    "flight to Lisbon": "screenshot.png",
    "boarding pass": "screenshot.png",
    "mushroom risotto": "menu.png",
    "wet paint": "notice.png",
    "do not touch": "notice.png",
}

#: Queries about what photos show: the text must not push these down.
PICTURE_QUERIES = {
    "a cat": "chelsea-the-cat.png",
    "a cup of coffee": "coffee-cup.png",
    "a rocket launch": "falcon9-rocket-launch.jpg",
    "an astronaut": "astronaut-eileen-collins.png",
    "a motorcycle": "red-motorcycle.png",
    "a brick wall": "brick-wall.png",
    "old coins": "greek-coins.png",
    "a pagoda": "chinese-pagoda.jpg",
}


def draw_text_photo(path: Path, background: tuple[int, int, int], colour: tuple[int, int, int],
                    lines: list[str], seed: int) -> None:
    rng = random.Random(seed)
    width, height = 1100, 140 + 70 * len(lines)
    noise = np.random.default_rng(seed).integers(-6, 7, (height, width, 3))
    pixels = np.clip(np.array(background) + noise, 0, 255).astype(np.uint8)
    image = Image.fromarray(pixels, "RGB")
    draw = ImageDraw.Draw(image)
    for i, line in enumerate(lines):
        font = ImageFont.truetype(FONT, 52 if i == 0 else 40)
        draw.text((60 + rng.randint(0, 30), 60 + 70 * i), line, fill=colour, font=font)
    image.save(path)


def build_library(root: Path) -> None:
    import skimage

    write_samples(root)
    shutil.copy(Path(skimage.__file__).parent / "data" / "page.png", root / "page.png")
    for seed, (name, (bg, fg, lines)) in enumerate(TEXT_PHOTOS.items()):
        draw_text_photo(root / name, bg, fg, lines, seed)


def rank_of(scores: dict[str, float], wanted: str) -> int:
    order = sorted(scores, key=lambda name: -scores[name])
    return order.index(wanted) + 1


def evaluate(embedder: Embedder, photos: dict[str, tuple[str, str]], queries: dict[str, str]
             ) -> dict[str, tuple[float, float]]:
    """{strategy: (recall@1, mean reciprocal rank)} over `queries`."""
    names = list(photos)
    captions = embedder.embed([photos[n][0] for n in names])
    combined = embedder.embed([embedding_text(*photos[n], 40) for n in names])
    texts = embedder.embed([photos[n][1] or photos[n][0] for n in names])
    has_text = np.array([bool(photos[n][1]) for n in names])
    out: dict[str, list[int]] = {"caption only": [], "one vector (caption + text)": [],
                                 "two vectors (best of)": []}
    for query, wanted in queries.items():
        q = embedder.embed([query])[0]
        by_caption = captions @ q
        two = np.where(has_text, np.maximum(by_caption, texts @ q), by_caption)
        for strategy, scores in (("caption only", by_caption),
                                 ("one vector (caption + text)", combined @ q),
                                 ("two vectors (best of)", two)):
            out[strategy].append(rank_of(dict(zip(names, scores.tolist(), strict=True)), wanted))
    return {k: (float(np.mean([r == 1 for r in v])), float(np.mean([1 / r for r in v])))
            for k, v in out.items()}


def main() -> int:
    work = Path(tempfile.mkdtemp(prefix="capdex-ocr-bench-"))
    try:
        root = work / "photos"
        root.mkdir()
        build_library(root)
        settings = Settings(data_dir=work / "data")
        db = Database(settings.db_url)
        embedder = Embedder("all-MiniLM-L6-v2")
        summary = Indexer(settings, db, embedder=embedder).run([root])
        print(summary.line())

        with db.read() as session:
            rows = session.execute(
                select(File.path, Caption.text, OcrText.text)
                .join(Caption, Caption.photo_id == File.photo_id)
                .join(OcrText, OcrText.photo_id == File.photo_id, isouter=True)).all()
        photos = {Path(p).name: (caption, ocr or "") for p, caption, ocr in rows}
        missing = [n for n in list(TEXT_QUERIES.values()) + list(PICTURE_QUERIES.values())
                   if n not in photos]
        assert not missing, missing

        # Time per photo, OCR against captioning, on the same decoded images.
        captioner = registry.create(settings.captioner, settings)
        engine = shared_engine(settings.ocr_min_confidence)
        images = {p.name: load_image(p, max_pixels=settings.max_image_pixels)
                  for p in sorted(root.iterdir())}
        ocr_times, caption_times = {}, {}
        for name, image in images.items():
            started = time.perf_counter()
            captioner.caption_batch([image])
            caption_times[name] = time.perf_counter() - started
            started = time.perf_counter()
            engine.read(image)
            ocr_times[name] = time.perf_counter() - started

        print("\nOCR text found:")
        for name, (_caption, text) in sorted(photos.items()):
            if text:
                print(f"  {name}: {text[:70]!r}")
        with_text = [n for n in images if photos[n][1]]
        without = [n for n in images if not photos[n][1]]
        def mean(xs: list[float]) -> float:
            return sum(xs) / len(xs)
        print("\n| photos | n | OCR s/photo | caption s/photo | OCR / caption |")
        print("|---|---|---|---|---|")
        for label, group in (("with text", with_text), ("without text", without),
                             ("all", list(images))):
            o, c = mean([ocr_times[n] for n in group]), mean([caption_times[n] for n in group])
            print(f"| {label} | {len(group)} | {o:.3f} | {c:.3f} | {o / c:.1f}x |")
        print(f"index run: {summary.seconds:.1f} s, of which OCR {summary.ocr_seconds:.1f} s")

        print("\n| strategy | text queries R@1 | text MRR | picture queries R@1 | picture MRR |")
        print("|---|---|---|---|---|")
        text_scores = evaluate(embedder, photos, TEXT_QUERIES)
        picture_scores = evaluate(embedder, photos, PICTURE_QUERIES)
        for strategy in text_scores:
            t, p = text_scores[strategy], picture_scores[strategy]
            print(f"| {strategy} | {t[0]:.2f} | {t[1]:.2f} | {p[0]:.2f} | {p[1]:.2f} |")
        print(f"({len(TEXT_QUERIES)} text queries, {len(PICTURE_QUERIES)} picture queries, "
              f"{len(photos)} photos)")
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
