"""Opening photos safely: one decoded, upright RGB image per file, or a readable reason why not."""

from __future__ import annotations

import io
import os
import struct
import threading
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from PIL import Image, ImageOps, UnidentifiedImageError

from capdex.regular_file import NotRegularFile, open_regular

#: Bytes handed to Pillow's decoder at a time (see `_decode`).
READ_BLOCK = 1 << 23


class ImageLoadError(Exception):
    """A file could not be turned into an image; str(error) is the reason shown to people."""


HEIF_EXTENSIONS = frozenset({".heic", ".heif"})
_heif_lock = threading.Lock()
_heif_state: bool | None = None  # None: not tried yet; then whether the opener is registered


def register_heif() -> bool:
    """Teach Pillow to open HEIC/HEIF (pillow-heif), once per process; False if not installed.

    Lazy because pillow-heif loads libheif, which most runs over JPEG folders never need.
    """
    global _heif_state
    with _heif_lock:
        if _heif_state is None:
            try:
                from pillow_heif import register_heif_opener
            except ImportError:
                _heif_state = False
            else:
                register_heif_opener()
                _heif_state = True
        return _heif_state


def to_rgb(image: Image.Image) -> Image.Image:
    """Convert any PIL mode to RGB; transparency is flattened onto white, 16-bit is scaled down."""
    if image.mode == "RGB":
        return image
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        # 16/32-bit greyscale: scale by the actual range so the picture is not all white.
        import numpy as np

        arr = np.asarray(image, dtype=np.float32)
        lo, hi = float(arr.min()), float(arr.max())
        arr = (arr - lo) * (255.0 / (hi - lo)) if hi > lo else np.zeros_like(arr)
        return Image.fromarray(arr.astype("uint8"), "L").convert("RGB")
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return image.convert("RGB")


@dataclass(frozen=True)
class DecodedImage:
    """An upright RGB image plus what the file said about itself."""

    image: Image.Image
    #: Full-resolution (width, height) after EXIF rotation, even when decoded at reduced scale.
    size: tuple[int, int]
    exif: Image.Exif


#: The least a consumer needs: an int n means both sides >= n; (short, long) means the short
#: side >= short and the long side >= long (a thumbnail fitted in a square box needs only its
#: long side, so a 4:3 photo can decode at 1/8 scale instead of 1/4).
SizeHint = int | tuple[int, int]


def decode_image(
    path: str | Path, *, max_pixels: int, size_hint: SizeHint | None = None,
    data: bytes | None = None,
) -> DecodedImage:
    """Decode `path` into an upright RGB image.

    `max_pixels` refuses decompression bombs before decoding. `size_hint` lets JPEGs decode at a
    reduced scale (draft mode) when the consumer only needs that many pixels (see `SizeHint`).
    `data`: the file's bytes, already read (the indexer hashes and decodes one read); `path`
    then only names the file. Raises ImageLoadError with a reason a person can read, whatever
    is wrong with the file.
    """
    heif = os.path.splitext(os.fspath(path))[1].lower() in HEIF_EXTENSIONS
    if heif and not register_heif():
        raise ImageLoadError("HEIC/HEIF needs pillow-heif: pip install pillow-heif")
    allow_pixels(max_pixels)
    try:
        return _decode_from(path, data, max_pixels, size_hint)
    except ImageLoadError as exc:
        # Phones sometimes export HEIC under a .jpg name: try again once HEIF is known.
        unknown = isinstance(exc.__cause__, UnidentifiedImageError)
        if not unknown or _heif_state is not None or not _looks_like_heif(path, data):
            raise
        register_heif()
        return _decode_from(path, data, max_pixels, size_hint)


def allow_pixels(max_pixels: int) -> None:
    """Raise Pillow's own decompression-bomb limit to `max_pixels` (CAPDEX_MAX_IMAGE_PIXELS).

    Pillow refuses images over twice its `MAX_IMAGE_PIXELS` (179 MP by default) before our own
    check runs, so a larger setting had no effect (issue 20, point 9). Process-wide and only
    ever raised: our own check in `_decode` is the limit that applies to each call.
    """
    current = Image.MAX_IMAGE_PIXELS
    if current is not None and current < max_pixels:
        Image.MAX_IMAGE_PIXELS = max_pixels


def _decode_from(path: str | Path, data: bytes | None, max_pixels: int,
                 size_hint: SizeHint | None) -> DecodedImage:
    """Decode `data`, or the file at `path` opened as a regular file (never a FIFO: it would
    block; see `capdex.regular_file`)."""
    if data is not None:
        return _decode(io.BytesIO(data), max_pixels, size_hint)
    try:
        handle = open_regular(path)
    except FileNotFoundError as exc:
        raise ImageLoadError("file disappeared before it could be read") from exc
    except NotRegularFile as exc:
        raise ImageLoadError("not a regular file (a FIFO, socket or device named like a "
                             "photo)") from exc
    except OSError as exc:
        raise ImageLoadError(f"cannot read: {exc.strerror or exc}") from exc
    with handle:
        return _decode(handle, max_pixels, size_hint)


def _looks_like_heif(path: str | Path, data: bytes | None = None) -> bool:
    """An ISO media file (`ftyp` box) of a HEIF brand."""
    try:
        if data is not None:
            head = data[:12]
        else:
            with open_regular(path) as handle:
                head = handle.read(12)
    except OSError:
        return False
    return head[4:8] == b"ftyp" and head[8:12] in (b"heic", b"heix", b"mif1", b"msf1", b"heim",
                                                  b"heis", b"hevc", b"hevx")


def _decode(path: str | Path | BinaryIO, max_pixels: int,
            size_hint: SizeHint | None) -> DecodedImage:
    try:
        with warnings.catch_warnings():
            # Our own pixel cap below is the limit; Pillow's lower default would only warn.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                width, height = image.size
                if width * height > max_pixels:
                    raise ImageLoadError(
                        f"image is {width}x{height} = {width * height:,} pixels, over the limit "
                        f"of {max_pixels:,} (CAPDEX_MAX_IMAGE_PIXELS)"
                    )
                exif = image.getexif()
                orientation = exif.get(0x0112, 1)
                full_size = (height, width) if orientation in (5, 6, 7, 8) else (width, height)
                if size_hint and image.format == "JPEG":
                    # Decode at 1/2, 1/4 or 1/8 scale, never below the size the model needs.
                    image.draft("RGB", _box(image.size, size_hint))
                image.seek(0)  # first frame of animations
                # Pillow feeds the decoder 64 KB at a time, taking the GIL back between blocks;
                # while the model's thread runs Python, each hand-back waits for it, and decoding
                # got ~10x slower in the indexer. A few blocks per photo avoid that convoy.
                image.decodermaxblock = READ_BLOCK
                image.load()
                upright = ImageOps.exif_transpose(image)
                upright = upright if upright is not None else image
                if size_hint:  # after the rotation, which needs the file's EXIF
                    upright = _reduce(upright, size_hint)
                rgb = to_rgb(upright)
                return DecodedImage(rgb, full_size, exif)
    except ImageLoadError:
        raise
    except FileNotFoundError as exc:
        raise ImageLoadError("file disappeared before it could be read") from exc
    except UnidentifiedImageError as exc:
        raise ImageLoadError("not a recognised image format (or the file is corrupt)") from exc
    except Image.DecompressionBombError as exc:
        raise ImageLoadError(f"refused as a possible decompression bomb: {exc}") from exc
    except OSError as exc:
        if "truncated" in str(exc).lower():
            raise ImageLoadError(
                f"image file is truncated, e.g. an unfinished copy or download ({exc})") from exc
        raise ImageLoadError(f"could not decode image: {exc}") from exc
    except (ValueError, SyntaxError, EOFError, struct.error) as exc:
        raise ImageLoadError(f"corrupt image data: {exc}") from exc
    except MemoryError as exc:
        raise ImageLoadError("not enough memory to decode this image") from exc
    except Exception as exc:
        raise ImageLoadError(f"could not decode image ({type(exc).__name__}: {exc})") from exc


def _box(size: tuple[int, int], hint: SizeHint) -> tuple[int, int]:
    """The (width, height) an image of `size` must keep to satisfy `hint`."""
    short, long = (hint, hint) if isinstance(hint, int) else hint
    long = max(short, long)
    return (long, short) if size[0] >= size[1] else (short, long)


def _reduce(image: Image.Image, size_hint: SizeHint) -> Image.Image:
    """Shrink by a whole factor (a fast box filter) while the image keeps `size_hint`.

    What JPEG draft mode does while decoding, done after it for other formats (PNG, TIFF, WebP)
    and for the rest of a JPEG's scale: resizing a full 12-MP frame later costs more than this.
    """
    box = _box(image.size, size_hint)
    factor = min(image.size[0] // max(1, box[0]), image.size[1] // max(1, box[1]))
    if factor < 2 or image.mode not in ("RGB", "RGBA", "L", "LA", "I", "F"):
        return image
    reduced = image.reduce(factor)
    reduced.info = image.info  # keep e.g. transparency for the conversion to RGB after
    return reduced


def load_image(path: str | Path, *, max_pixels: int,
               size_hint: SizeHint | None = None) -> Image.Image:
    """Just the upright RGB image of `path` (see `decode_image`)."""
    return decode_image(path, max_pixels=max_pixels, size_hint=size_hint).image


def largest_hint(hints: Iterable[SizeHint | None]) -> SizeHint | None:
    """The least size that satisfies every hint (None among them: no need)."""
    shorts, longs = [], []
    for hint in hints:
        if hint:
            short, long = (hint, hint) if isinstance(hint, int) else hint
            shorts.append(short)
            longs.append(max(short, long))
    if not shorts:
        return None
    short, long = max(shorts), max(longs)
    return short if short == long else (short, long)


def reduce_image(image: Image.Image, size_hint: SizeHint) -> Image.Image:
    """`image` shrunk by the largest whole factor that keeps `size_hint` (a fast box filter):
    a smaller view of one decode for a consumer that needs fewer pixels."""
    return _reduce(image, size_hint)
