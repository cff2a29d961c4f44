"""Where and when through the API and the CLI (issue 15): `place=` / `--place`, what the query
was understood as, `parse=false` / `--no-parse`, the photo's place, and weak matches."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from capdex.api.app import create_app
from capdex.api.cli import app as cli
from capdex.indexer.pipeline import Indexer
from capdex.settings import Settings
from capdex.store.db import Database
from tests.api.serving import serving
from tests.search.test_where_when import write_where_when_photos


@pytest.fixture
def indexed(tmp_path: Path, settings: Settings, embedder, colour_captioner) -> Settings:
    Indexer(settings, Database(settings.db_url), embedder=embedder, ocr=False).run(
        [write_where_when_photos(tmp_path / "photos")])
    return settings


@pytest.fixture
def server(indexed: Settings) -> Iterator[str]:
    with serving(create_app(indexed)) as url:
        yield url


def search(server: str, **params: object) -> dict:
    response = httpx.get(f"{server}/api/search", params=params)
    assert response.status_code == 200, response.text
    return response.json()


def names(data: dict) -> list[str]:
    return [Path(r["path"]).stem for r in data["results"] if not r["weak"]]


def test_search_reads_place_and_date_and_says_so(server: str) -> None:
    data = search(server, q="red in Lisbon 2019")
    assert names(data) == ["red"]
    assert data["understood"] == {"text": "red", "place": "Lisbon", "taken_after": "2019-01-01",
                                  "taken_before": "2019-12-31", "season": None}
    assert names(search(server, q="summer in Australia")) == ["blue"]


def test_place_filter_and_parse_false(server: str) -> None:
    assert names(search(server, q="picture", place="lisbon", min_score=0)) == ["red"]
    assert search(server, q="picture", place="Atlantis", min_score=0)["results"] == []
    raw = search(server, q="red in Lisbon", parse="false")
    assert raw["understood"] is None
    too_long = httpx.get(f"{server}/api/search", params={"q": "x", "place": "x" * 201})
    assert too_long.status_code == 422 and "place" in too_long.text


def test_a_photo_says_where_it_was_taken(server: str) -> None:
    red = search(server, q="red", parse="false")["results"][0]
    photo = httpx.get(f"{server}/api/photos/{red['id']}").json()
    assert photo["place"] == {"city": photo["place"]["city"], "region": "Lisbon",
                              "country": "Portugal"} and photo["place"]["city"]
    green = search(server, q="green", parse="false")["results"][0]
    assert httpx.get(f"{server}/api/photos/{green['id']}").json()["place"] is None  # no GPS


def test_weak_matches_are_marked(server: str) -> None:
    data = search(server, q="an elephant playing the violin", k=3)
    assert data["total"] == 0 and data["results"] and all(r["weak"] for r in data["results"])


runner = CliRunner()


def capdex(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_cli_place_no_parse_and_weak(indexed: Settings) -> None:
    data_dir = str(indexed.data_dir)
    code, out, err = capdex("search", "red in Lisbon", "--data-dir", data_dir)
    assert code == 0 and "red.jpg" in out and "understood: place Lisbon" in err
    code, out, _ = capdex("search", "picture", "--place", "Portugal", "--min-score", "0",
                          "--data-dir", data_dir, "--json")
    assert code == 0 and [Path(r["path"]).stem for r in json.loads(out)["results"]] == ["red"]
    code, out, _ = capdex("search", "red in Lisbon", "--no-parse", "--json", "--data-dir", data_dir)
    assert code == 0 and json.loads(out)["understood"] is None
    code, out, _ = capdex("search", "an elephant playing the violin", "--data-dir", data_dir)
    assert code == 0 and out.startswith("No photos match")
    assert "No strong matches — closest photos:" in out and ".jpg" in out


def test_cli_index_no_place(tmp_path: Path, data_dir: Path, colour_captioner) -> None:
    photos = write_where_when_photos(tmp_path / "photos")
    code, out, err = capdex("index", str(photos), "--data-dir", str(data_dir), "--captioner",
                            "test-colour", "--no-ocr", "--no-place", "--json")
    assert code == 0, err
    assert json.loads(out)["places_read"] == 0
    code, out, err = capdex("index", str(photos), "--data-dir", str(data_dir), "--captioner",
                            "test-colour", "--no-ocr")
    assert code == 0 and "places for 5 of 6 photo(s)" in out, (out, err)
