"""The place stage (issue 15): where from EXIF GPS (offline GeoNames), when as words; no GPS is
no place and no error; a new data set redoes places only."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from capdex.embedder import Embedder
from capdex.indexer.pipeline import Indexer
from capdex.indexer.stages import place as place_stage
from capdex.store import places, words
from capdex.store.db import Database
from capdex.store.models import File
from capdex.when import part_of_day, season, time_words
from tests.where_photos import LISBON, MID_ATLANTIC, SYDNEY, write_geo_photo


def test_seasons_flip_south_of_the_equator_and_default_to_north() -> None:
    assert season(1, SYDNEY[0]) == "summer" and season(1, LISBON[0]) == "winter"
    assert season(7, SYDNEY[0]) == "winter" and season(4, -12.0) == "autumn"
    assert season(1) == "winter"  # no GPS: northern
    assert [part_of_day(h) for h in (4, 5, 12, 17, 21)] == [
        "night", "morning", "afternoon", "evening", "night"]
    assert time_words(datetime(2019, 1, 5, 8, 30), SYDNEY[0]) == "2019 January summer morning"
    assert time_words(datetime(2019, 1, 5), None) == "2019 January winter"  # no time of day
    assert time_words(None, SYDNEY[0]) == ""


@pytest.fixture
def geo_folder(tmp_path: Path) -> Path:
    root = tmp_path / "photos"
    write_geo_photo(root / "red.jpg", "red", LISBON, datetime(2019, 7, 14, 15, 0), seed=1)
    write_geo_photo(root / "blue.jpg", "blue", SYDNEY, datetime(2020, 1, 2, 19, 30), seed=2)
    write_geo_photo(root / "green.jpg", "green", None, datetime(2021, 12, 24, 9, 0), seed=3)
    write_geo_photo(root / "black.jpg", "black", MID_ATLANTIC, None, seed=4)
    return root


def _by_name(db: Database) -> dict[str, int]:
    with db.read() as session:
        return {Path(p).name: i for p, i in session.execute(select(File.path, File.photo_id))}


def test_places_and_time_words_are_stored_and_searchable(geo_folder, db_settings, embedder: Embedder, colour_captioner) -> None:
    db = Database(db_settings.db_url)
    summary = Indexer(db_settings, db, embedder=embedder, ocr=False).run([geo_folder])
    assert summary.places_read == 4 and summary.places_found == 2 and summary.failed == 0
    ids = _by_name(db)
    with db.read() as session:
        found = places.places_of(session, ids.values())
        added = words.words_of(session, ids.values())
    assert found[ids["red.jpg"]].country == "Portugal" and found[ids["red.jpg"]].region == "Lisbon"
    assert found[ids["blue.jpg"]].as_dict()["country"] == "Australia"
    assert ids["green.jpg"] not in found and ids["black.jpg"] not in found  # no GPS; at sea
    assert "Portugal" in added[ids["red.jpg"]]["place"]
    assert added[ids["red.jpg"]]["time"] == "2019 July summer afternoon"
    assert added[ids["blue.jpg"]]["time"] == "2020 January summer evening"  # Sydney: summer
    assert added[ids["green.jpg"]] == {"time": "2021 December winter morning"}
    assert ids["black.jpg"] not in added

    from capdex.search.engine import SearchEngine

    engine = SearchEngine(db_settings, db, embedder)
    assert [h.id for h in engine.search("Portugal", mode="keyword").results] == [ids["red.jpg"]]
    assert [h.id for h in engine.search("Lisbon", mode="semantic", min_score=0.2).results][:1] \
        == [ids["red.jpg"]]  # embedded: found by meaning too
    assert {h.id for h in engine.search("summer", mode="keyword").results} == {
        ids["red.jpg"], ids["blue.jpg"]}
    assert not Indexer(db_settings, db, embedder=embedder, ocr=False).run([geo_folder]).did_something


def test_a_new_data_set_redoes_places_only(geo_folder, settings, embedder: Embedder, colour_captioner, monkeypatch) -> None:
    db = Database(settings.db_url)
    Indexer(settings, db, embedder=embedder, ocr=False).run([geo_folder])
    captioned = colour_captioner.captioned()
    monkeypatch.setattr(place_stage.geocode, "data_version", lambda: "reverse-geocode 99")
    again = Indexer(settings, db, embedder=embedder, ocr=False).run([geo_folder])
    assert again.places_read == 4 and again.places_found == 2
    assert colour_captioner.captioned() == captioned
    with db.read() as session:
        assert places.stale_photos(session, "1+reverse-geocode 99") == []


def test_no_place_stage_when_turned_off(geo_folder, settings, embedder: Embedder, colour_captioner) -> None:
    db = Database(settings.db_url)
    summary = Indexer(settings, db, embedder=embedder, ocr=False, place=False).run([geo_folder])
    assert summary.places_read == 0
    with db.read() as session:
        assert places.places_of(session, _by_name(db).values()) == {}
