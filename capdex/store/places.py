"""Where photos were taken, by name (the place stage, migration 0010): written and read here only.

A photo has one row once the place stage has looked at it, with its names or with none (no GPS,
or far from any town); the row's `version` names the geocoder and data set that made it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import Select, func, or_, select, union
from sqlalchemy.orm import Session

from capdex.store.models import File, PhotoPlace, utcnow


@dataclass(frozen=True)
class Place:
    city: str | None
    region: str | None
    country: str | None
    country_code: str | None = None

    def as_dict(self) -> dict[str, str | None]:
        return {"city": self.city, "region": self.region, "country": self.country}

    @property
    def names(self) -> list[str]:
        """Its names, most precise first, without repeats ("Lisbon, Lisbon, Portugal")."""
        return list(dict.fromkeys(n for n in (self.city, self.region, self.country) if n))


def set_place(session: Session, photo_id: int, place: Place | None, version: str) -> None:
    """Record the photo's place (None: it has none) as found by `version`."""
    row = session.get(PhotoPlace, photo_id)
    if row is None:
        row = PhotoPlace(photo_id=photo_id)
        session.add(row)
    place = place or Place(None, None, None)
    row.city, row.region, row.country = place.city, place.region, place.country
    row.country_code, row.version, row.created_at = place.country_code, version, utcnow()


def places_of(session: Session, photo_ids: Iterable[int]) -> dict[int, Place]:
    """{photo id: place} of those photos that have one."""
    ids = list(photo_ids)
    out: dict[int, Place] = {}
    for start in range(0, len(ids), 500):
        rows = session.scalars(select(PhotoPlace).where(
            PhotoPlace.photo_id.in_(ids[start : start + 500]),
            or_(PhotoPlace.city.is_not(None), PhotoPlace.country.is_not(None))))
        for row in rows:
            out[row.photo_id] = Place(row.city, row.region, row.country, row.country_code)
    return out


def stale_photos(session: Session, version: str) -> list[int]:
    """Photos with a file whose place was not looked up by this version, in id order."""
    done = select(PhotoPlace.photo_id).where(PhotoPlace.version == version)
    return list(session.scalars(select(File.photo_id).distinct()
                                .where(File.photo_id.not_in(done)).order_by(File.photo_id)))


def photos_in(name: str) -> Select:
    """A select of the ids of photos whose city, region or country is `name` (any case)."""
    wanted = name.strip().lower()
    return select(PhotoPlace.photo_id).where(or_(
        func.lower(PhotoPlace.city) == wanted, func.lower(PhotoPlace.region) == wanted,
        func.lower(PhotoPlace.country) == wanted))


def known_names(session: Session) -> set[str]:
    """Every city, region and country some photo was taken in (the names a query can say)."""
    names = union(select(PhotoPlace.city.label("n")), select(PhotoPlace.region),
                  select(PhotoPlace.country))
    return {n for n in session.scalars(select(names.subquery().c.n)) if n}


def count(session: Session) -> tuple[int, object]:
    """(rows, newest row's time): changes whenever places are written."""
    rows, newest = session.execute(select(func.count(), func.max(PhotoPlace.created_at))).one()
    return int(rows), newest
