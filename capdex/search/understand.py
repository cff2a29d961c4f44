"""Query understanding: the places and dates a query names become filters, the rest is searched
by meaning ("cat in Tokyo" → place Tokyo + "cat"; "flowers in spring 2019" → spring, 2019 +
"flowers").

What is read (lower case, anywhere in the query):
- a place some photo was taken in (its city, region or country, as the place stage stored it;
  a few everyday names too: "USA", "UK"), the longest one first, e.g. "New York";
- "<month> <year>" (that month), "<season> <year>" and "<year>" (that calendar year),
  "<season>" (that season, in each photo's hemisphere: the season words the place stage
  stored), "last <season>" (its latest one before the current season), "this <season>"
  (within the past year), and "today",
  "yesterday", "last week", "last month", "this month", "last year", "this year" against
  `today` (a clock the caller passes). "fall" counts only as "in/last/this fall" or "fall
  <year>", and a month alone ("may") is left to the words: both are everyday words too.
A preposition left hanging ("in", "at", "from", ...) goes with what it introduced.

It is a few regular expressions and dictionary look-ups: microseconds per query
(`benchmarks/understand.py`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta

from capdex.when import MONTHS, SEASON_ALIASES, SEASONS

#: Everyday names of countries, as GeoNames (the place stage) names them.
ALIASES = {"usa": "United States", "us": "United States", "u.s.": "United States",
           "america": "United States", "uk": "United Kingdom", "britain": "United Kingdom",
           "great britain": "United Kingdom", "holland": "Netherlands"}
_PREPOSITIONS = {"in", "at", "from", "during", "on", "of", "near", "around", "taken"}
_HANGING = _PREPOSITIONS | {"the"}
_MAX_PLACE_WORDS = 4
_TOKEN = re.compile(r"[^\W_]+(?:[.'’-][^\W_]+)*\.?", re.UNICODE)
_MONTH_NAMES = {name: i + 1 for i, name in enumerate(MONTHS)} | {
    name[:3]: i + 1 for i, name in enumerate(MONTHS) if name != "may"} | {"sept": 9}
_SEASON_NAMES = {name: name for name in SEASONS} | SEASON_ALIASES


class PlaceNames:
    """The place names a query may say: lower-cased name → the name as stored."""

    def __init__(self, names: Iterable[str]) -> None:
        self.names: dict[str, str] = {}
        for name in names:
            key = " ".join(_words(name))
            if key and not key.isdigit():
                self.names.setdefault(key, name)
        stored = set(self.names)
        for alias, name in ALIASES.items():
            if name.lower() in stored:
                self.names.setdefault(alias, name)

    def __len__(self) -> int:
        return len(self.names)


@dataclass(frozen=True)
class Understanding:
    """What a query says: the words to search by meaning, and the filters it names."""

    text: str
    place: str | None = None
    taken_after: date | None = None
    #: The last day included.
    taken_before: date | None = None
    season: str | None = None

    @property
    def found(self) -> bool:
        return any((self.place, self.taken_after, self.taken_before, self.season))

    def as_dict(self) -> dict[str, object]:
        return {"text": self.text, "place": self.place,
                "taken_after": self.taken_after.isoformat() if self.taken_after else None,
                "taken_before": self.taken_before.isoformat() if self.taken_before else None,
                "season": self.season}


def understand(query: str, places: PlaceNames, today: date, *, dates: bool = True,
               place: bool = True, seasons: bool = True) -> Understanding:
    """Split `query` into filters and text. `dates`/`place` False leave those words as text
    (the request set that filter explicitly: explicit filters win); `seasons` False leaves
    season words as text (they are everyday words too: "spring", "winter" in a folder name)."""
    spans = [(m.start(), m.end(), m.group().lower().rstrip(".")) for m in _TOKEN.finditer(query)]
    words = [w for _, _, w in spans]
    used = [False] * len(words)
    after = before = None
    season = None
    if dates:
        after, before, season = _read_dates(words, used, today, seasons)
    found_place = _read_place(words, used, places) if place else None
    _drop_hanging_prepositions(words, used)
    if not any(used):
        return Understanding(query.strip())
    text = " ".join(query[start:end] for (start, end, _), gone in zip(spans, used, strict=True)
                    if not gone)
    return Understanding(text, found_place, after, before, season)


def _words(text: str) -> list[str]:
    return [m.group().lower().rstrip(".") for m in _TOKEN.finditer(text)]


def _read_dates(words: list[str], used: list[bool], today: date,
                seasons: bool) -> tuple[date | None, date | None, str | None]:
    """The first date phrase in `words` (marked used): (first day, last day, season)."""
    n = len(words)
    for i, word in enumerate(words):
        if not seasons and word in _SEASON_NAMES:
            continue
        nxt = words[i + 1] if i + 1 < n else ""
        year = _year(nxt, today)
        if word in ("last", "this", "past") and nxt:
            span = _relative(word, nxt, today)
            if span is not None:
                used[i] = used[i + 1] = True
                return span
        if word in _MONTH_NAMES and year is not None:
            used[i] = used[i + 1] = True
            first = date(year, _MONTH_NAMES[word], 1)
            return first, _month_end(first), None
        if word in _SEASON_NAMES and year is not None:
            used[i] = used[i + 1] = True
            return date(year, 1, 1), date(year, 12, 31), _SEASON_NAMES[word]
        if _year(word, today) is not None:
            year = int(word)
            used[i] = True
            return date(year, 1, 1), date(year, 12, 31), None
        if word == "today":
            used[i] = True
            return today, today, None
        if word == "yesterday":
            used[i] = True
            return today - timedelta(days=1), today - timedelta(days=1), None
        if word in _SEASON_NAMES:
            if word in SEASON_ALIASES and (i == 0 or words[i - 1] not in _PREPOSITIONS):
                continue  # "fall" alone is a fall
            used[i] = True
            return None, None, _SEASON_NAMES[word]
    return None, None, None


def _relative(word: str, unit: str, today: date) -> tuple[date | None, date | None,
                                                           str | None] | None:
    if unit in _SEASON_NAMES:
        # Seasons turn on the same days in both hemispheres (1 Dec, Mar, Jun, Sep), so the
        # four seasons before the current one hold exactly one of each, north and south.
        if word == "this":
            return today - timedelta(days=365), today, _SEASON_NAMES[unit]
        start = _season_start(today)
        return start.replace(year=start.year - 1), start - timedelta(days=1), _SEASON_NAMES[unit]
    if unit == "week":
        return (today - timedelta(days=7), today, None) if word != "this" else (
            today - timedelta(days=today.weekday()), today, None)
    if unit == "month":
        this_month = today.replace(day=1)
        if word == "this":
            return this_month, today, None
        last = (this_month - timedelta(days=1)).replace(day=1)
        return last, _month_end(last), None
    if unit == "year":
        if word == "this":
            return date(today.year, 1, 1), today, None
        return date(today.year - 1, 1, 1), date(today.year - 1, 12, 31), None
    return None


def _season_start(today: date) -> date:
    """The first day of the season `today` is in."""
    month = today.month - today.month % 3
    return date(today.year - 1, 12, 1) if month == 0 else date(today.year, month, 1)


def _year(word: str, today: date) -> int | None:
    if len(word) == 4 and word.isdigit() and 1826 <= int(word) <= today.year + 1:
        return int(word)
    return None


def _month_end(first: date) -> date:
    following = (first.replace(day=28) + timedelta(days=4)).replace(day=1)
    return following - timedelta(days=1)


def _read_place(words: list[str], used: list[bool], places: PlaceNames) -> str | None:
    """The longest place name among the unused words (marked used), or None."""
    if not places.names:
        return None
    n = len(words)
    for size in range(min(_MAX_PLACE_WORDS, n), 0, -1):
        for i in range(n - size + 1):
            if any(used[i : i + size]):
                continue
            name = places.names.get(" ".join(words[i : i + size]))
            if name is not None and words[i] not in _PREPOSITIONS:
                for j in range(i, i + size):
                    used[j] = True
                return name
    return None


def _drop_hanging_prepositions(words: list[str], used: list[bool]) -> None:
    """"cat in Tokyo" → "cat": a preposition just before a read phrase goes with it."""
    for i in range(len(words) - 1, -1, -1):
        if not used[i] and words[i] in _HANGING and i + 1 < len(words) and used[i + 1]:
            used[i] = True
