"""Words for when a photo was taken: year, month, season, part of day — the same words the
index stores and the query parser reads, so both sides agree.

Seasons are meteorological (whole months: December–February is winter in the north) and flip
south of the equator: January in Sydney is summer. A photo without GPS counts as northern —
most photos people take are (about 88% of people live in the northern hemisphere), and a
wrong guess only costs one season word, never a date.
"""

from __future__ import annotations

from datetime import datetime

MONTHS = ("january", "february", "march", "april", "may", "june", "july", "august",
          "september", "october", "november", "december")
SEASONS = ("winter", "spring", "summer", "autumn")
#: Other words people say for a season.
SEASON_ALIASES = {"fall": "autumn"}
_NORTHERN = {12: "winter", 1: "winter", 2: "winter", 3: "spring", 4: "spring", 5: "spring",
             6: "summer", 7: "summer", 8: "summer", 9: "autumn", 10: "autumn", 11: "autumn"}
_OPPOSITE = {"winter": "summer", "summer": "winter", "spring": "autumn", "autumn": "spring"}


def season(month: int, latitude: float | None = None) -> str:
    """The season of `month` (1–12) where the photo was taken; northern when unknown."""
    north = _NORTHERN[month]
    return _OPPOSITE[north] if latitude is not None and latitude < 0 else north


def season_months(name: str, southern: bool = False) -> tuple[int, ...]:
    """The months (1–12) of a season, December first for winter in the north."""
    wanted = _OPPOSITE[name] if southern else name
    months = [m for m in (12, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11) if _NORTHERN[m] == wanted]
    return tuple(months)


def part_of_day(hour: int) -> str:
    """morning 5–12 h, afternoon 12–17 h, evening 17–21 h, night otherwise (local time)."""
    if 5 <= hour < 12:
        return "morning"
    if 12 <= hour < 17:
        return "afternoon"
    if 17 <= hour < 21:
        return "evening"
    return "night"


def time_words(taken_at: datetime | None, latitude: float | None = None) -> str:
    """"2019 January summer morning" for a photo taken then (EXIF time is local time); "" when
    the date is unknown. A date without a time (midnight exactly) gets no part of day."""
    if taken_at is None:
        return ""
    words = [str(taken_at.year), MONTHS[taken_at.month - 1].capitalize(),
             season(taken_at.month, latitude)]
    if (taken_at.hour, taken_at.minute, taken_at.second) != (0, 0, 0):
        words.append(part_of_day(taken_at.hour))
    return " ".join(words)
