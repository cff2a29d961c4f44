"""What a search asks for, checked once: the HTTP API and the CLI build the same request."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Literal

Mode = Literal["hybrid", "semantic", "keyword"]
Sort = Literal["relevance", "date"]
MODES: tuple[Mode, ...] = ("hybrid", "semantic", "keyword")
SORTS: tuple[Sort, ...] = ("relevance", "date")
MAX_QUERY_LENGTH = 500
MAX_K = 1000
MAX_OFFSET = 100_000
MAX_PERSON_LENGTH = 200
#: Longest accepted filters (issue 20, point 6: 50,000 characters made SQLite's LIKE fail).
MAX_FOLDER_LENGTH = 4096
MAX_CAMERA_LENGTH = 200
MAX_DATE_LENGTH = 40


def shown(value: str, limit: int = 60) -> str:
    """`value` quoted for an error message: cut to `limit` characters, and anything that cannot
    be encoded (a lone surrogate) escaped, so a message never fails to print or to send."""
    cut = value if len(value) <= limit else value[:limit] + "…"
    return repr(cut.encode("utf-8", "backslashreplace").decode("utf-8"))


class SearchRequestError(ValueError):
    """A search parameter is invalid; the message names it and says why."""


@dataclass(frozen=True)
class DateBound:
    """A `taken_after`/`taken_before` value: a whole day (a date) or an instant (a datetime)."""

    value: datetime
    whole_day: bool

    @property
    def start(self) -> datetime:
        return self.value

    @property
    def end(self) -> datetime:
        """The first instant after the bound (a date includes its whole day); the last instant
        there is for the last day there is (9999-12-31)."""
        if not self.whole_day:
            return self.value
        try:
            return self.value + timedelta(days=1)
        except OverflowError:
            return datetime.max


def parse_date(name: str, value: str | date | datetime | None) -> DateBound | None:
    """An ISO date ("2023-06-01") or date-time ("2023-06-01T14:30"); time zones are dropped
    because EXIF dates are the camera's local time."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return DateBound(value.replace(tzinfo=None), whole_day=False)
    if isinstance(value, date):
        return DateBound(datetime(value.year, value.month, value.day), whole_day=True)
    text = value.strip()
    if len(text) > MAX_DATE_LENGTH:
        raise SearchRequestError(f"{name}: longer than {MAX_DATE_LENGTH} characters; give an ISO "
                                 "date such as 2023-06-01 or 2023-06-01T14:30")
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            return DateBound(datetime(day.year, day.month, day.day), whole_day=True)
        return DateBound(datetime.fromisoformat(text).replace(tzinfo=None), whole_day=False)
    except ValueError:
        raise SearchRequestError(
            f"{name}: {shown(text)} is not an ISO date such as 2023-06-01 or 2023-06-01T14:30"
        ) from None


@dataclass(frozen=True)
class SearchRequest:
    """One validated search. `mode` and `min_score` left as None take the settings' values."""

    q: str
    k: int = 20
    offset: int = 0
    mode: Mode | None = None
    min_score: float | None = None
    sort: Sort = "relevance"
    taken_after: DateBound | None = None
    taken_before: DateBound | None = None
    folder: str | None = None
    camera: str | None = None
    #: Only photos that show text (OCR) when True, only those that do not when False.
    has_text: bool | None = None
    #: Only photos of this person: an id, or a name (`capdex.store.people.person_photos`).
    person: str | None = None
    #: Only photos taken in this city, region or country (as the place stage named it).
    place: str | None = None
    #: Read places and dates out of `q` as filters (`capdex.search.understand`).
    parse: bool = True
    #: Only photos taken in this season where they were taken (read from the query).
    season: str | None = None

    @property
    def filtered(self) -> bool:
        return any((self.taken_after, self.taken_before, self.folder, self.camera,
                    self.has_text is not None, self.person, self.place, self.season))

    @classmethod
    def build(
        cls,
        q: str,
        *,
        k: int = 20,
        offset: int = 0,
        mode: str | None = None,
        min_score: float | None = None,
        sort: str | None = None,
        taken_after: str | date | None = None,
        taken_before: str | date | None = None,
        folder: str | None = None,
        camera: str | None = None,
        has_text: bool | None = None,
        person: str | int | None = None,
        place: str | None = None,
        parse: bool = True,
    ) -> SearchRequest:
        """Check every parameter; raise `SearchRequestError` naming the first bad one."""
        if not isinstance(q, str) or not q.strip():
            raise SearchRequestError("q: the query is empty")
        if len(q) > MAX_QUERY_LENGTH:
            raise SearchRequestError(f"q: the query is longer than {MAX_QUERY_LENGTH} characters")
        if not 1 <= k <= MAX_K:
            raise SearchRequestError(f"k: must be between 1 and {MAX_K}")
        if not 0 <= offset <= MAX_OFFSET:
            raise SearchRequestError(f"offset: must be between 0 and {MAX_OFFSET}")
        if mode is not None and mode not in MODES:
            raise SearchRequestError(f"mode: {shown(mode)} is not one of {', '.join(MODES)}")
        if sort is not None and sort not in SORTS:
            raise SearchRequestError(f"sort: {shown(sort)} is not one of {', '.join(SORTS)}")
        if min_score is not None and not -1.0 <= min_score <= 1.0:
            raise SearchRequestError("min_score: must be between -1 and 1")
        after = parse_date("taken_after", taken_after)
        before = parse_date("taken_before", taken_before)
        if after and before and after.start >= before.end:
            raise SearchRequestError("taken_after: is later than taken_before")
        if folder is not None and len(folder) > MAX_FOLDER_LENGTH:
            raise SearchRequestError(f"folder: longer than {MAX_FOLDER_LENGTH} characters")
        if camera is not None and len(camera) > MAX_CAMERA_LENGTH:
            raise SearchRequestError(f"camera: longer than {MAX_CAMERA_LENGTH} characters")
        if folder is not None:
            folder = folder.strip()
            if not folder:
                folder = None
            elif not os.path.isabs(folder):
                raise SearchRequestError(f"folder: {shown(folder)} is not an absolute path")
            elif folder != os.sep:
                folder = folder.rstrip(os.sep)
        camera = (camera or "").strip() or None
        if has_text is not None and not isinstance(has_text, bool):
            raise SearchRequestError("has_text: must be true or false")
        who = " ".join(str(person).split()) if person is not None else ""
        if len(who) > MAX_PERSON_LENGTH:
            raise SearchRequestError(f"person: longer than {MAX_PERSON_LENGTH} characters")
        place = " ".join((place or "").split()) or None
        if place is not None and len(place) > 200:
            raise SearchRequestError("place: longer than 200 characters")
        return cls(q.strip(), k, offset, mode, min_score, sort or "relevance",
                   after, before, folder, camera, has_text, who or None, place, bool(parse))
