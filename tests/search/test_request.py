"""Search parameters are checked once, with a reason naming the bad one."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from capdex.search.request import SearchRequest, SearchRequestError


def test_defaults_and_normalisation() -> None:
    request = SearchRequest.build("  cat  ", folder="/photos/2023/", camera="  ")
    assert request.q == "cat" and request.sort == "relevance" and request.mode is None
    assert request.folder == "/photos/2023" and request.camera is None
    assert request.filtered


def test_dates_are_days_or_instants() -> None:
    request = SearchRequest.build("x", taken_after="2023-06-01", taken_before="2023-06-01")
    assert request.taken_after.start == datetime(2023, 6, 1)
    assert request.taken_before.end == datetime(2023, 6, 2)  # the whole day is included
    instant = SearchRequest.build("x", taken_before="2023-06-01T14:30:00+02:00")
    assert instant.taken_before.end == datetime(2023, 6, 1, 14, 30)
    assert SearchRequest.build("x", taken_after=date(2020, 1, 1)).taken_after.whole_day


@pytest.mark.parametrize(("options", "reason"), [
    ({"q": " "}, "q: the query is empty"),
    ({"q": "x" * 501}, "longer than 500"),
    ({"k": 0}, "k: must be between"),
    ({"offset": -1}, "offset: must be between"),
    ({"mode": "fuzzy"}, "mode: 'fuzzy' is not one of hybrid, semantic, keyword"),
    ({"sort": "name"}, "sort: 'name' is not one of relevance, date"),
    ({"min_score": 2.0}, "min_score: must be between -1 and 1"),
    ({"taken_after": "yesterday"}, "taken_after: 'yesterday' is not an ISO date"),
    ({"taken_before": "2023-13-01"}, "taken_before: '2023-13-01' is not an ISO date"),
    ({"taken_after": "2024-01-02", "taken_before": "2024-01-01"}, "later than taken_before"),
    ({"folder": "photos/2023"}, "folder: 'photos/2023' is not an absolute path"),
])
def test_bad_parameters_say_which_and_why(options: dict, reason: str) -> None:
    q = options.pop("q", "cat")
    with pytest.raises(SearchRequestError, match=reason.replace("(", r"\(")):
        SearchRequest.build(q, **options)
