"""What a photo's EXIF says: when and where it was taken, with which camera and lens."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from PIL import Image

_EXIF_IFD = 0x8769
_DATETIME_ORIGINAL = 0x9003
_DATETIME_DIGITIZED = 0x9004
_DATETIME = 0x0132
_MAKE = 0x010F
_MODEL = 0x0110
_LENS_MAKE = 0xA433
_LENS_MODEL = 0xA434
_GPS_IFD = 0x8825
_GPS_LAT_REF, _GPS_LAT, _GPS_LON_REF, _GPS_LON = 1, 2, 3, 4


@dataclass(frozen=True, slots=True)
class PhotoMetadata:
    width: int
    height: int
    taken_at: datetime | None = None
    camera_make: str | None = None
    camera_model: str | None = None
    lens: str | None = None
    latitude: float | None = None
    longitude: float | None = None


def parse_exif_datetime(value: object) -> datetime | None:
    """EXIF writes 'YYYY:MM:DD HH:MM:SS'; blank or zeroed dates mean unknown."""
    if not isinstance(value, str):
        return None
    value = value.strip().rstrip("\x00")
    for fmt in ("%Y:%m:%d %H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y:%m:%d"):
        try:
            return datetime.strptime(value[:19], fmt)
        except ValueError:
            continue
    return None


def _text(value: object) -> str | None:
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if not isinstance(value, str):
        return None
    value = value.strip().strip("\x00").strip()
    return value[:200] or None


def _lens(sub: dict) -> str | None:
    """LensModel, prefixed with LensMake when the model does not already name it."""
    make, model = _text(sub.get(_LENS_MAKE)), _text(sub.get(_LENS_MODEL))
    if model and make and not model.lower().startswith(make.lower()):
        return f"{make} {model}"[:200]
    return model or make


def _degrees(value: Any, ref: object, limit: float) -> float | None:
    """Degrees from EXIF (degrees, minutes, seconds) rationals and an N/S or E/W reference."""
    try:
        parts = [float(v) for v in value]
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    if not parts or len(parts) > 3 or not all(math.isfinite(p) for p in parts):
        return None
    degrees = sum(p / 60**i for i, p in enumerate(parts))
    if isinstance(ref, bytes):
        ref = ref.decode("ascii", "replace")
    if isinstance(ref, str) and ref.strip().upper()[:1] in ("S", "W"):
        degrees = -degrees
    return round(degrees, 7) if abs(degrees) <= limit else None


def read_gps(exif: Image.Exif) -> tuple[float | None, float | None]:
    """(latitude, longitude) in signed decimal degrees; (None, None) when absent or nonsense."""
    gps = exif.get_ifd(_GPS_IFD)
    if _GPS_LAT not in gps or _GPS_LON not in gps:
        return None, None
    lat = _degrees(gps[_GPS_LAT], gps.get(_GPS_LAT_REF), 90.0)
    lon = _degrees(gps[_GPS_LON], gps.get(_GPS_LON_REF), 180.0)
    if lat is None or lon is None or (lat == 0.0 and lon == 0.0):  # 0,0: a zeroed GPS block
        return None, None
    return lat, lon


def read_metadata(exif: Image.Exif, upright_size: tuple[int, int]) -> PhotoMetadata:
    """Metadata from a file's EXIF; `upright_size` is the full size after EXIF rotation.

    Each field is read on its own, so one broken tag loses only that field, never the photo.
    """
    fields: dict[str, Any] = {}
    try:
        sub = exif.get_ifd(_EXIF_IFD)
    except Exception:  # noqa: BLE001
        sub = {}
    readers = {
        "taken_at": lambda: (parse_exif_datetime(sub.get(_DATETIME_ORIGINAL))
                             or parse_exif_datetime(sub.get(_DATETIME_DIGITIZED))
                             or parse_exif_datetime(exif.get(_DATETIME))),
        "camera_make": lambda: _text(exif.get(_MAKE)),
        "camera_model": lambda: _text(exif.get(_MODEL)),
        "lens": lambda: _lens(sub),
    }
    for name, read in readers.items():
        try:
            fields[name] = read()
        except Exception:  # noqa: BLE001 - broken EXIF must not lose the photo
            fields[name] = None
    try:
        fields["latitude"], fields["longitude"] = read_gps(exif)
    except Exception:  # noqa: BLE001
        pass
    return PhotoMetadata(upright_size[0], upright_size[1], **fields)
