"""A library with known captions, written straight into the store (no captioner needed)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytest

from capdex.embedder import Embedder
from capdex.settings import Settings
from capdex.search.engine import SearchEngine
from capdex.store.db import Database
from capdex.indexer.embed import embedding_text
from capdex.store.models import MACHINE, Caption, File, OcrText, Photo, Vector

EVAL_DIR = Path(__file__).parent.parent / "data" / "eval"
#: Captions the tagger (EfficientNet-Lite0, version 1) wrote for capdex.samples' photos.
SAMPLE_CAPTIONS: dict[str, str] = json.loads((EVAL_DIR / "sample_captions.json").read_text())
SAMPLE_QUERIES = EVAL_DIR / "sample_queries.json"
#: The text RapidOCR (rapidocr-onnxruntime 1.4.4) read in the sample photos that show any.
SAMPLE_OCR: dict[str, str] = json.loads((EVAL_DIR / "sample_ocr.json").read_text())
#: Captions the same tagger wrote for 26 real photos from Debian's wallpaper packages
#: (lomiri-wallpapers-16.04/-20.04 in /usr/share/backgrounds, mate-backgrounds' nature/;
#: landscapes, animals, flowers, objects; no text for OCR). The abstract artworks are left out.
WALLPAPER_CAPTIONS: dict[str, str] = json.loads((EVAL_DIR / "wallpaper_captions.json").read_text())
#: Everyday queries over the sample and wallpaper photos, answers judged before any was run.
EVERYDAY_QUERIES = EVAL_DIR / "everyday_queries.json"


@dataclass(frozen=True)
class Item:
    path: str
    caption: str
    taken_at: datetime | None = None
    make: str | None = None
    model: str | None = None
    ocr: str = ""  # the text the photo shows


def store_library(db: Database, embedder: Embedder, items: Sequence[Item]) -> dict[str, int]:
    """Photos, files, machine captions, OCR text and their vectors (caption + text), as an index
    run would leave them; returns photo ids by file name."""
    vectors = embedder.embed([embedding_text(item.caption, item.ocr, 40) for item in items])
    ids: dict[str, int] = {}
    with db.session() as session:
        for item, vector in zip(items, vectors, strict=True):
            photo = Photo(content_hash=hashlib.sha256(item.path.encode()).hexdigest(), size=1,
                          taken_at=item.taken_at, camera_make=item.make, camera_model=item.model)
            session.add(photo)
            session.flush()
            session.add(File(path=item.path, size=1, mtime_ns=1, photo_id=photo.id))
            caption = Caption(photo_id=photo.id, text=item.caption, source=MACHINE,
                              captioner="known", captioner_version="1")
            session.add(caption)
            ocr = OcrText(photo_id=photo.id, text=item.ocr, engine="known", engine_version="1")
            session.add(ocr)
            session.flush()
            session.add(Vector(photo_id=photo.id, caption_id=caption.id, embedder=embedder.name,
                               ocr_id=ocr.id if item.ocr else None, dim=len(vector),
                               vector=vector.tobytes()))
            ids[Path(item.path).name] = photo.id
    return ids


@pytest.fixture
def make_engine(db_settings: Settings, embedder: Embedder) -> Callable[..., tuple[SearchEngine, dict[str, int]]]:
    """Build a library from items and return (engine, photo ids by file name), on SQLite and on
    PostgreSQL in turn (`db_settings`)."""
    settings = db_settings

    def build(items: Sequence[Item], **overrides: object) -> tuple[SearchEngine, dict[str, int]]:
        config = settings.model_copy(update=overrides)
        db = Database(config.db_url)
        ids = store_library(db, embedder, items)
        return SearchEngine(config, db, embedder), ids

    return build


def sample_items(root: str = "/photos/samples") -> list[Item]:
    return [Item(f"{root}/{name}", caption, ocr=SAMPLE_OCR.get(name, ""))
            for name, caption in SAMPLE_CAPTIONS.items()]


def library_items() -> list[Item]:
    """The sample photos and the wallpaper photos, as one library."""
    return sample_items() + [Item(f"/photos/wallpapers/{name}", caption)
                             for name, caption in WALLPAPER_CAPTIONS.items()]
