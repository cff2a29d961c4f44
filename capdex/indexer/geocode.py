"""Offline reverse geocoding: a GPS position to the nearest town's city, region and country.

`reverse-geocode` ships GeoNames' cities1000 (every place of 1,000+ people, with its region and
country names) in its wheel and looks the nearest one up in a k-d tree: about 0.4 s to load,
then microseconds a photo. A position farther than MAX_KM from any such place (at sea, in a
desert) has no place rather than a wrong one.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from importlib import metadata
from typing import Any

from capdex.store.places import Place

#: A photo farther than this from the nearest town of 1,000+ people gets no place.
MAX_KM = 50.0
_lock = threading.Lock()


class GeocoderUnavailable(RuntimeError):
    """reverse-geocode is not installed: the message says how to install it."""


def data_version() -> str:
    """The geocoder and its data set ("reverse-geocode 1.6.6"); the data ships in the wheel, so
    a new data set is a new package version."""
    try:
        return f"reverse-geocode {metadata.version('reverse-geocode')}"
    except metadata.PackageNotFoundError:
        raise GeocoderUnavailable(
            "places need the reverse-geocode package: pip install 'reverse-geocode>=1.6' "
            "(a core dependency of capdex), or index with --no-place") from None


def _module() -> Any:
    try:
        import reverse_geocode
    except ImportError:
        data_version()  # raises the actionable message
        raise
    return reverse_geocode


def places(positions: Sequence[tuple[float, float]]) -> list[Place | None]:
    """The place of each (latitude, longitude); None when no town is within MAX_KM."""
    if not positions:
        return []
    module = _module()
    with _lock:  # the first call loads the data set once
        found = module.search(list(positions))
    out: list[Place | None] = []
    for (lat, lon), row in zip(positions, found, strict=True):
        far = _km(lat, lon, row["latitude"], row["longitude"]) > MAX_KM
        out.append(None if far else Place(row.get("city") or None, row.get("state") or None,
                                          row.get("country") or None,
                                          row.get("country_code") or None))
    return out


def _km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance (haversine)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    a = (math.sin((p2 - p1) / 2) ** 2
         + math.cos(p1) * math.cos(p2) * math.sin(math.radians(lon2 - lon1) / 2) ** 2)
    return 2 * 6371.0 * math.asin(min(1.0, math.sqrt(a)))
