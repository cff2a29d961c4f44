"""The place stage: where and when, in words (issue 15). Needs no pixels: it reads the EXIF GPS
and date the decode (or the store) already has.

Where: city, region and country of the nearest town (`capdex.indexer.geocode`), stored per
photo (`capdex.store.places`) and as embedded "place" words, so "Lisbon" finds photos by
keyword and by meaning. When: year, month, season (by the hemisphere of the photo's latitude)
and part of day as "time" words (`capdex.when`), keyword-only: they would blur the caption's
meaning in its vector, and queries that name a time become date filters anyway
(`capdex.search.understand`). No GPS → no place, no error; no date → no time words.

The version names the geocoder's data set, so a new GeoNames data set redoes places (and only
places) on the next run.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from capdex.indexer import geocode
from capdex.indexer.stage import Stage, StageInput
from capdex.store import places, words
from capdex.when import time_words

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from capdex.settings import Settings

#: Bumped when what this stage writes changes (the data set's version is added to it).
_OWN_VERSION = "1"


class PlaceStage(Stage):
    name = "place"
    word_kinds = ("place", "time")
    fatal = (geocode.GeocoderUnavailable,)

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._version: str | None = None

    @classmethod
    def create(cls, settings: Settings, options: Mapping[str, Any]) -> PlaceStage | None:
        on = options.get("place")
        return cls(settings) if (settings.place if on is None else on) else None

    @property
    def version(self) -> str:
        if self._version is None:
            self._version = f"{_OWN_VERSION}+{geocode.data_version()}"
        return self._version

    def check(self) -> None:
        geocode.data_version()

    def pending(self, session: Session) -> list[int]:
        return places.stale_photos(session, self.version)

    def run(self, inputs: Sequence[StageInput]) -> list[Any]:
        positions = [_position(item) for item in inputs]
        known = [p for p in positions if p is not None]
        found = iter(geocode.places(known))
        out = []
        for item, position in zip(inputs, positions, strict=True):
            place = next(found) if position is not None else None
            meta = item.metadata
            latitude = position[0] if position is not None else None
            out.append({
                "place": place.as_dict() | {"country_code": place.country_code} if place else None,
                "time": time_words(meta.taken_at if meta else None, latitude),
            })
        return out

    def write(self, session: Session, photo_id: int, result: Any, version: str) -> None:
        found = result.get("place")
        place = places.Place(found.get("city"), found.get("region"), found.get("country"),
                             found.get("country_code")) if found else None
        places.set_place(session, photo_id, place, version)
        words.set_words(session, photo_id, "place", ", ".join(place.names) if place else "",
                        embedded=True, version=version)
        words.set_words(session, photo_id, "time", result.get("time") or "", version=version)

    def tally(self, summary: Any, result: Any) -> None:
        summary.places_read += 1
        summary.places_found += bool(result.get("place"))


def _position(item: StageInput) -> tuple[float, float] | None:
    """The photo's (latitude, longitude) when its EXIF has a usable one."""
    meta = item.metadata
    if meta is None or meta.latitude is None or meta.longitude is None:
        return None
    lat, lon = meta.latitude, meta.longitude
    if not (math.isfinite(lat) and math.isfinite(lon) and -90 <= lat <= 90 and -180 <= lon <= 180):
        return None
    if lat == 0 and lon == 0:  # "null island": a GPS without a fix writes zeros
        return None
    return lat, lon
