"""Thumbnails: made while indexing, upright (EXIF orientation applied), small WebP in the data dir."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image
from sqlalchemy import select

from capdex.embedder import Embedder
from capdex.settings import Settings
from capdex.indexer.pipeline import Indexer
from capdex.indexer.thumbnails import thumbnail_path
from capdex.store.db import Database
from capdex.store.models import Photo


def test_thumbnails_are_made_while_indexing_and_upright(settings: Settings, tmp_path: Path,
                                                        embedder: Embedder, colour_captioner) -> None:
    # 800x400 landscape pixels, left half red and right half blue, tagged "rotate 90° clockwise".
    pixels = np.zeros((400, 800, 3), np.uint8)
    pixels[:, :400] = (220, 30, 30)
    pixels[:, 400:] = (30, 40, 220)
    image = Image.fromarray(pixels, "RGB")
    exif = image.getexif()
    exif[0x0112] = 6
    folder = tmp_path / "photos"
    folder.mkdir()
    image.save(folder / "rotated.jpg", exif=exif, quality=92)

    db = Database(settings.db_url)
    Indexer(settings, db, embedder=embedder).run([folder])
    with db.read() as session:
        photo = session.scalars(select(Photo)).one()
    path = thumbnail_path(settings, photo.content_hash)
    assert path.is_relative_to(settings.data_dir) and path.exists()
    with Image.open(path) as thumb:
        assert thumb.format == "WEBP"
        assert thumb.size == (settings.thumbnail_size // 2, settings.thumbnail_size)  # portrait now
        top, bottom = thumb.convert("RGB").getpixel((96, 10)), thumb.convert("RGB").getpixel((96, 370))
    assert top[0] > 150 and top[2] < 100  # red went to the top, as the camera meant
    assert bottom[2] > 150 and bottom[0] < 100
    assert (photo.width, photo.height) == (400, 800)
