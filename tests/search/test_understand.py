"""Query understanding (issue 15): places and dates out of the query, the rest is text."""

from __future__ import annotations

from datetime import date

import pytest

from capdex.search.understand import PlaceNames, understand

PLACES = PlaceNames(["Tokyo", "Australia", "New South Wales", "Sydney", "Turkey", "Nice",
                     "New York", "United States", "Lisbon", "Portugal"])
TODAY = date(2026, 12, 5)


@pytest.mark.parametrize(("query", "text", "place", "after", "before", "season"), [
    ("cat in Tokyo", "cat", "Tokyo", None, None, None),
    ("flowers in spring 2019", "flowers", None, "2019-01-01", "2019-12-31", "spring"),
    ("summer in Australia", "", "Australia", None, None, "summer"),
    ("December 2021", "", None, "2021-12-01", "2021-12-31", None),
    ("feb 2024", "", None, "2024-02-01", "2024-02-29", None),
    ("in 2019", "", None, "2019-01-01", "2019-12-31", None),
    ("last summer", "", None, "2025-12-01", "2026-11-30", "summer"),
    ("snow last winter", "snow", None, "2025-12-01", "2026-11-30", "winter"),
    ("yesterday", "", None, "2026-12-04", "2026-12-04", None),
    ("beach last month", "beach", None, "2026-11-01", "2026-11-30", None),
    ("last year", "", None, "2025-01-01", "2025-12-31", None),
    ("sunset in new york", "sunset", "New York", None, None, None),
    ("photos from the USA", "photos", "United States", None, None, None),
    ("leaves in fall", "leaves", None, None, None, "autumn"),
    ("fall leaves", "fall leaves", None, None, None, None),  # "fall" alone is a thing
    ("may I see the dog", "may I see the dog", None, None, None, None),  # a month alone: words
    ("a dog on the beach", "a dog on the beach", None, None, None, None),
    ("route 2099", "route 2099", None, None, None, None),  # not a year yet
])
def test_places_and_dates_become_filters(query, text, place, after, before, season) -> None:
    got = understand(query, PLACES, TODAY).as_dict()
    assert got == {"text": text, "place": place, "taken_after": after, "taken_before": before,
                   "season": season}


def test_explicit_filters_leave_their_words_as_text() -> None:
    got = understand("cat in Tokyo 2019", PLACES, TODAY, dates=False, place=False)
    assert got.text == "cat in Tokyo 2019" and not got.found


def test_only_places_of_the_library_are_read() -> None:
    assert understand("cat in Paris", PLACES, TODAY).place is None
    assert understand("cat in Paris", PlaceNames([]), TODAY).text == "cat in Paris"


def test_last_season_ends_where_the_current_one_begins() -> None:
    spring = understand("last winter", PLACES, date(2026, 4, 2))
    assert (spring.taken_after, spring.taken_before) == (date(2025, 3, 1), date(2026, 2, 28))
    january = understand("last winter", PLACES, date(2026, 1, 15))
    assert (january.taken_after, january.taken_before) == (date(2024, 12, 1), date(2025, 11, 30))
