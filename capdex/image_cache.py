"""Images capdex makes from photos and keeps in the data dir — thumbnails and previews — named
by content hash: one way to name, check and write them (the indexer and the API both do)."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from PIL import Image

from capdex.atomic import atomic_write_bytes

if TYPE_CHECKING:
    from capdex.settings import Settings


@dataclass(frozen=True)
class CacheKind:
    """One kind of cached image: its folder under the data dir and how it is encoded."""

    folder: str
    quality: int
    #: WebP effort: 0 is ~4x faster to encode than 4 for ~20% more bytes.
    method: int
    resample: Image.Resampling
    #: fsync the file: a cache a power cut may leave empty is made again (`is_cached`), so only
    #: images that are costly to make again are worth two fsyncs.
    durable: bool


#: Written while indexing, where a slower encoder would cost about as much CPU as the default
#: tagger's caption; a power cut's empty file is remade on demand.
THUMBNAILS = CacheKind("thumbnails", quality=80, method=0, resample=Image.Resampling.BICUBIC,
                       durable=False)
#: Made on demand by the API for the photo view, from a full decode.
PREVIEWS = CacheKind("previews", quality=82, method=4, resample=Image.Resampling.LANCZOS,
                     durable=True)


def cached_path(settings: Settings, kind: CacheKind, content_hash: str) -> Path:
    return settings.data_dir / kind.folder / content_hash[:2] / f"{content_hash}.webp"


def is_cached(settings: Settings, kind: CacheKind, content_hash: str) -> bool:
    """A usable image exists (an empty file, left by a power cut, is remade)."""
    try:
        return cached_path(settings, kind, content_hash).stat().st_size > 0
    except OSError:
        return False


def write_cached(settings: Settings, kind: CacheKind, content_hash: str, image: Image.Image,
                 side: int) -> Path:
    """`image` fitted into a `side`-pixel square, as WebP, written atomically; its path."""
    fitted = image.copy()
    fitted.thumbnail((side, side), kind.resample)
    buffer = io.BytesIO()
    fitted.save(buffer, format="WEBP", quality=kind.quality, method=kind.method)
    path = cached_path(settings, kind, content_hash)
    atomic_write_bytes(path, buffer.getvalue(), durable=kind.durable)
    return path
