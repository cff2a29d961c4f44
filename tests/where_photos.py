"""Photos that say where and when they were taken (EXIF GPS and date, written by the tests)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from PIL import Image

from tests.conftest import write_colour_photo

#: (latitude, longitude) of places the tests name.
LISBON = (38.7107, -9.1366)
SYDNEY = (-33.8568, 151.2153)
TOKYO = (35.6595, 139.7005)
ISTANBUL = (41.0100, 28.9800)
MID_ATLANTIC = (30.0, -40.0)


def _dms(value: float) -> tuple[float, float, float]:
    value = abs(value)
    degrees = int(value)
    minutes = int((value - degrees) * 60)
    return float(degrees), float(minutes), round((value - degrees - minutes / 60) * 3600, 4)


def write_geo_photo(path: Path, colour: str, where: tuple[float, float] | None,
                    taken: datetime | None, seed: int = 0) -> Path:
    """A colour photo (see `write_colour_photo`) whose EXIF says where and when."""
    write_colour_photo(path, colour, seed=seed)
    exif = Image.Exif()
    if taken is not None:
        exif.get_ifd(0x8769)[0x9003] = taken.strftime("%Y:%m:%d %H:%M:%S")
    if where is not None:
        lat, lon = where
        exif.get_ifd(0x8825).update({1: "N" if lat >= 0 else "S", 2: _dms(lat),
                                     3: "E" if lon >= 0 else "W", 4: _dms(lon)})
    with Image.open(path) as image:
        image.load()
        image.save(path, quality=90, exif=exif)
    return path
