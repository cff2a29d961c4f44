"""Searches that say where and when (issue 15), over photos whose EXIF GPS and dates the test
writes: places and dates become filters, explicit filters win, an ambiguous place falls back,
and a search that clears no cut-off still shows the closest photos, marked weak."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from capdex.embedder import Embedder
from capdex.indexer.pipeline import Indexer
from capdex.search.engine import SearchEngine
from capdex.settings import Settings
from capdex.store.db import Database
from capdex.store.models import File
from tests.where_photos import ISTANBUL, LISBON, SYDNEY, TOKYO, write_geo_photo

TODAY = date(2026, 12, 5)


def write_where_when_photos(root: Path) -> Path:
    """Six colour photos: where and when each was taken."""
    write_geo_photo(root / "red.jpg", "red", LISBON, datetime(2019, 7, 14, 15, 0), seed=1)
    write_geo_photo(root / "blue.jpg", "blue", SYDNEY, datetime(2020, 1, 2, 19, 30), seed=2)
    write_geo_photo(root / "green.jpg", "green", None, datetime(2021, 12, 24, 9, 0), seed=3)
    write_geo_photo(root / "yellow.jpg", "yellow", TOKYO, datetime(2019, 4, 10, 11, 0), seed=4)
    write_geo_photo(root / "white.jpg", "white", ISTANBUL, datetime(2026, 12, 4, 22, 0), seed=5)
    write_geo_photo(root / "black.jpg", "black", SYDNEY, datetime(2026, 7, 1, 8, 0), seed=6)
    return root


@pytest.fixture
def library(tmp_path: Path, db_settings: Settings, embedder: Embedder, colour_captioner):
    db = Database(db_settings.db_url)
    Indexer(db_settings, db, embedder=embedder, ocr=False).run(
        [write_where_when_photos(tmp_path / "photos")])
    with db.read() as session:
        ids = {Path(p).stem: i for p, i in session.execute(select(File.path, File.photo_id))}
    return SearchEngine(db_settings, db, embedder, today=lambda: TODAY), ids


def found(engine: SearchEngine, query: str, **options: object) -> set[str]:
    names = {v: k for k, v in engine_ids(engine).items()}
    return {names[hit.id] for hit in engine.search(query, **options).results if not hit.weak}


def engine_ids(engine: SearchEngine) -> dict[str, int]:
    with engine.db.read() as session:
        return {Path(p).stem: i for p, i in session.execute(select(File.path, File.photo_id))}


@pytest.mark.parametrize(("query", "expected"), [
    ("red in Lisbon", {"red"}),
    ("yellow picture in Tokyo", {"yellow"}),
    ("summer in Australia", {"blue"}),  # January in Sydney; July there is winter
    ("in 2019", {"red", "yellow"}),
    ("December 2021", {"green"}),
    ("yellow in spring 2019", {"yellow"}),
    ("yesterday", {"white"}),  # the clock is set to 2026-12-05
    ("last winter", {"black"}),  # Sydney in July 2026; December 2021 is too long ago
    ("Portugal", {"red"}),
])
def test_places_and_dates_in_the_query_become_filters(library, query, expected) -> None:
    engine, _ = library
    assert found(engine, query) == expected


def test_the_response_says_what_it_understood(library) -> None:
    engine, _ = library
    results = engine.search("red in Lisbon in 2019").as_dict()
    assert results["understood"] == {"text": "red", "place": "Lisbon", "taken_after": "2019-01-01",
                                     "taken_before": "2019-12-31", "season": None}
    assert engine.search("red in Lisbon", parse=False).understood is None


def test_explicit_filters_win_over_parsed_ones(library) -> None:
    engine, ids = library
    results = engine.search("yellow in Tokyo", place="Lisbon", min_score=0)
    assert results.understood["place"] is None and results.understood["text"] == "yellow in Tokyo"
    assert {hit.id for hit in results.results} == {ids["red"]}
    dated = engine.search("in 2019", taken_after="2021-01-01", min_score=0)
    assert ids["red"] not in {hit.id for hit in dated.results}


def test_a_place_that_leaves_nothing_falls_back_with_a_note(library) -> None:
    """"Turkey" is a country here (the Istanbul photo): "green turkey" must still find green."""
    engine, ids = library
    results = engine.search("green turkey")
    assert ids["green"] in {hit.id for hit in results.results if not hit.weak}
    assert results.understood["place"] is None
    assert any("Turkey" in note for note in results.notes)


def test_the_closest_photos_are_shown_weak_when_none_clears_the_cut_off(library) -> None:
    engine, _ = library
    results = engine.search("an elephant playing the violin", k=3, mode="semantic")
    assert 1 <= len(results.results) <= 3 and all(hit.weak for hit in results.results)
    assert results.total == 0  # none clears the cut-off
    assert any("closest" in note for note in results.notes)
    assert results.as_dict()["results"][0]["weak"] is True
    strict = engine.search("an elephant playing the violin", k=3, mode="semantic", min_score=0.3)
    assert strict.results == [] and not strict.notes
