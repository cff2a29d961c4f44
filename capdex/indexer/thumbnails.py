"""Small WebP thumbnails, made from the image the indexer already decoded, cached in the data dir
by content hash (`capdex.image_cache`)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from capdex.image_cache import THUMBNAILS, cached_path, is_cached, write_cached

if TYPE_CHECKING:
    from PIL import Image

    from capdex.settings import Settings


def thumbnail_path(settings: Settings, content_hash: str) -> Path:
    return cached_path(settings, THUMBNAILS, content_hash)


def has_thumbnail(settings: Settings, content_hash: str) -> bool:
    return is_cached(settings, THUMBNAILS, content_hash)


def write_thumbnail(settings: Settings, content_hash: str, image: Image.Image) -> Path:
    """Write the thumbnail (longest side `settings.thumbnail_size`) atomically; return its path."""
    return write_cached(settings, THUMBNAILS, content_hash, image, settings.thumbnail_size)
