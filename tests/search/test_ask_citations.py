"""Citations in answers: only retrieved photos may be cited, also when the answer streams in."""

from __future__ import annotations

import pytest

from capdex.search.ask import CitationFilter, clean_answer

ALLOWED = {3, 5, 12}


@pytest.mark.parametrize(("answer", "cleaned", "cited"), [
    ("We went to the beach in July [#12].", "We went to the beach in July [#12].", [12]),
    ("We went to the beach [#999].", "We went to the beach.", []),
    ("See [#3, #999, #5] and [#5].", "See [#3][#5] and [#5].", [3, 5]),
    ("[#999] The dog [#3] sleeps.", "The dog [#3] sleeps.", [3]),
    ("Photos [#12;#3] and [ #5 ] and [# 3].", "Photos [#12][#3] and [#5] and [#3].", [12, 3, 5]),
    ("Numbers [12] and [#] and [#x] stay, as do [links](#3).",
     "Numbers [12] and [#] and [#x] stay, as do [links](#3).", []),
    ("Leading zeros [#0005] are the same id.", "Leading zeros [#5] are the same id.", [5]),
    ("Line one [#999]\n\nLine two [#3]", "Line one\n\nLine two [#3]", [3]),
    ("An unfinished citation at the end [#3", "An unfinished citation at the end [#3", []),
    ("Huge [#99999999999999999999999] id.", "Huge id.", []),
    ("Red\x1b[31m alert\x07 [#3]\r\n\tok\x9b", "Red[31m alert [#3]\n\tok", [3]),
    ("Enormous [#" + "9" * 5000 + "] id.", "Enormous id.", []),
])
def test_clean_answer(answer: str, cleaned: str, cited: list[int]) -> None:
    assert clean_answer(answer, ALLOWED) == (cleaned, cited)


@pytest.mark.parametrize("size", [1, 2, 3, 5, 8, 1000])
def test_a_stream_cleans_exactly_as_the_whole_answer(size: int) -> None:
    answer = ("The beach [#12] was in July;  the restaurant [#999, #3] was in Lisbon [#404]. "
              "An [ aside ] and [#5]. Done [#77]")
    citations = CitationFilter(ALLOWED)
    shown = [citations.feed(answer[i : i + size]) for i in range(0, len(answer), size)]
    shown.append(citations.finish())
    assert "".join(shown).strip() == clean_answer(answer, ALLOWED)[0]
    assert citations.cited == [12, 3, 5] and citations.removed == [999, 404, 77]
    # no piece ever shows a removed id, even for a moment
    assert not any("999" in piece or "404" in piece or "77" in piece for piece in shown)


def test_text_that_only_looks_like_a_citation_start_is_not_held_forever() -> None:
    citations = CitationFilter(ALLOWED)
    assert citations.feed("a [") == "a"
    assert citations.feed("#") == ""
    assert citations.feed("1") == ""
    assert citations.feed("x] b") == " [#1x] b"
    assert citations.finish() == ""
    long = CitationFilter(ALLOWED)
    shown = long.feed("[#" + "1, #" * 100)
    assert shown.startswith("[#1, #1")  # too long to be waited for
