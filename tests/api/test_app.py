"""The JSON API over real HTTP: search contract, photo metadata, files, status, errors."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn

from capdex.api.app import create_app
from capdex.settings import Settings
from capdex.indexer.pipeline import Indexer
from capdex.store.db import Database


@pytest.fixture
def server(colour_folder: Path, settings: Settings, embedder, colour_captioner) -> Iterator[str]:
    """A real uvicorn server on a free loopback port, over an indexed colour folder."""
    Indexer(settings, Database(settings.db_url), embedder=embedder).run([colour_folder])
    yield from _serve(settings)


def test_healthz(server: str) -> None:
    assert httpx.get(f"{server}/healthz").json() == {"status": "ok"}


def test_search_contract_matches_the_cli(server: str) -> None:
    data = httpx.get(f"{server}/api/search", params={"q": "green", "k": 2, "min_score": 0}).json()
    assert data["query"] == "green" and isinstance(data["total"], int)
    assert len(data["results"]) == 2
    assert Path(data["results"][0]["path"]).name == "green.jpg"
    assert {"id", "path", "caption", "score"} <= set(data["results"][0])


def test_pages_are_disjoint(server: str) -> None:
    first = httpx.get(f"{server}/api/search", params={"q": "colour", "k": 3, "min_score": 0}).json()
    second = httpx.get(f"{server}/api/search", params={"q": "colour", "k": 3, "offset": 3,
                                                          "min_score": 0}).json()
    ids = [r["id"] for r in first["results"] + second["results"]]
    assert len(ids) == len(set(ids)) == 6 and first["total"] == second["total"] == 6


def test_photo_metadata_thumbnail_and_file(server: str) -> None:
    hit = httpx.get(f"{server}/api/search", params={"q": "blue", "k": 1}).json()["results"][0]
    photo = httpx.get(f"{server}/api/photos/{hit['id']}").json()
    assert photo["caption"] == "a plain blue picture" and photo["caption_source"] == "machine"
    assert (photo["width"], photo["height"]) == (64, 48)
    assert photo["captions"][0]["captioner"] == "test-colour"
    thumb = httpx.get(f"{server}/api/photos/{hit['id']}/thumbnail")
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/webp"
    assert "max-age" in thumb.headers["cache-control"]
    original = httpx.get(f"{server}/api/photos/{hit['id']}/file")
    assert original.status_code == 200 and original.content == Path(photo["path"]).read_bytes()


def test_status(server: str) -> None:
    data = httpx.get(f"{server}/api/status").json()
    assert data["photos"] == data["vectors"] == 6 and data["captioner"] == "test-colour"


def test_search_accepts_every_documented_parameter(server: str, colour_folder: Path) -> None:
    params = {"q": "red", "k": 5, "offset": 0, "mode": "hybrid", "min_score": 0.1,
              "sort": "date", "taken_after": "2000-01-01", "taken_before": "2100-12-31",
              "folder": str(colour_folder), "camera": "x"}
    response = httpx.get(f"{server}/api/search", params=params)
    assert response.status_code == 200 and response.json()["total"] == 0  # no camera "x"
    del params["camera"], params["taken_after"], params["taken_before"]
    data = httpx.get(f"{server}/api/search", params=params).json()
    assert Path(data["results"][0]["path"]).name == "red.jpg" and data["mode"] == "hybrid"


def test_results_explain_their_match(server: str) -> None:
    hit = httpx.get(f"{server}/api/search", params={"q": "yellow"}).json()["results"][0]
    assert hit["match"]["keyword"]["snippet"] == "a plain [yellow] picture"
    assert hit["match"]["keyword"]["fields"] == ["caption", "names"]
    assert 0 < hit["match"]["semantic"]["score"] <= 1


def test_modes_and_folder_filter(server: str, colour_folder: Path) -> None:
    nested = str(colour_folder / "nested")
    data = httpx.get(f"{server}/api/search", params={"q": "picture", "mode": "semantic",
                                                     "min_score": -1, "folder": nested}).json()
    assert data["total"] == 3 and all(r["path"].startswith(nested) for r in data["results"])
    data = httpx.get(f"{server}/api/search", params={"q": "green", "mode": "keyword"}).json()
    assert [Path(r["path"]).name for r in data["results"]] == ["green.jpg"]
    assert data["results"][0]["match"].get("semantic") is None


def test_a_query_matching_nothing_returns_only_the_closest_marked_weak(server: str) -> None:
    data = httpx.get(f"{server}/api/search", params={"q": "zebra", "k": 3}).json()
    assert data["total"] == 0 and 1 <= len(data["results"]) <= 3
    assert all(r["weak"] for r in data["results"]) and "closest" in data["notes"][0]
    data = httpx.get(f"{server}/api/search", params={"q": "zebra", "min_score": 0.3}).json()
    assert data["total"] == 0 and data["results"] == []  # an explicit cut-off still cuts


def test_similar_photos(server: str) -> None:
    hit = httpx.get(f"{server}/api/search", params={"q": "blue", "k": 1}).json()["results"][0]
    data = httpx.get(f"{server}/api/photos/{hit['id']}/similar", params={"k": 3}).json()
    assert data["id"] == hit["id"] and data["caption"] == "a plain blue picture"
    assert len(data["results"]) == 3 and hit["id"] not in [r["id"] for r in data["results"]]
    # the colour captioner gives no image features: caption vectors, each scored
    assert data["by"] == "caption"
    assert all(r["match"]["caption"]["score"] == r["score"] for r in data["results"])
    missing = httpx.get(f"{server}/api/photos/999999/similar")
    assert missing.status_code == 404 and "no photo with id" in missing.json()["detail"]
    assert httpx.get(f"{server}/api/photos/{hit['id']}/similar", params={"k": 0}).status_code == 422


@pytest.mark.parametrize(("params", "reason"), [
    ({"q": "a", "mode": "fuzzy"}, "mode"),
    ({"q": "a", "sort": "name"}, "sort"),
    ({"q": "a", "taken_after": "last week"}, "taken_after"),
    ({"q": "a", "taken_after": "2024-02-01", "taken_before": "2024-01-01"}, "later than"),
    ({"q": "a", "folder": "relative/path"}, "absolute"),
    ({"q": "a", "min_score": 3}, ""),
])
def test_bad_search_parameters_are_422_with_a_reason(server: str, params: dict, reason: str) -> None:
    response = httpx.get(f"{server}/api/search", params=params)
    assert response.status_code == 422 and reason in str(response.json()["detail"])


@pytest.mark.parametrize("params", [{"q": ""}, {"q": "x" * 501}, {"q": "a", "k": 0},
                                    {"q": "a", "k": 5000}, {}, {"q": "   "}])
def test_bad_search_requests_are_4xx_with_a_reason(server: str, params: dict) -> None:
    response = httpx.get(f"{server}/api/search", params=params)
    assert 400 <= response.status_code < 500 and response.json()["detail"]


def test_unknown_photo_is_404(server: str) -> None:
    for suffix in ("", "/thumbnail", "/file"):
        response = httpx.get(f"{server}/api/photos/999999{suffix}")
        assert response.status_code == 404 and "no photo with id" in response.json()["detail"]


def test_openapi_docs_are_served(server: str) -> None:
    assert httpx.get(f"{server}/docs").status_code == 200
    assert "/api/search" in httpx.get(f"{server}/openapi.json").json()["paths"]


def hit_for(server: str, query: str) -> dict:
    return httpx.get(f"{server}/api/search", params={"q": query, "k": 1}).json()["results"][0]


def test_put_caption_stores_a_human_caption_searchable_at_once(server: str) -> None:
    photo_id = hit_for(server, "red")["id"]
    response = httpx.put(f"{server}/api/photos/{photo_id}/caption",
                         json={"caption": "a fire engine at the parade"})
    assert response.status_code == 200
    body = response.json()
    assert body["caption"] == "a fire engine at the parade" and body["caption_source"] == "human"
    assert {c["source"] for c in body["captions"]} == {"human", "machine"}
    top = hit_for(server, "fire engine parade")
    assert top["id"] == photo_id and top["caption_source"] == "human"

    reverted = httpx.delete(f"{server}/api/photos/{photo_id}/caption").json()
    assert reverted["caption"] == "a plain red picture" and reverted["caption_source"] == "machine"
    after = httpx.get(f"{server}/api/search", params={"q": "fire engine parade"}).json()["results"]
    assert all(r["caption"] != "a fire engine at the parade" for r in after)


@pytest.mark.parametrize("body", [{"caption": ""}, {"caption": "   "}, {"caption": "x" * 2001},
                                  {}, {"text": "wrong field"}])
def test_bad_captions_are_4xx_with_a_reason(server: str, body: dict) -> None:
    photo_id = hit_for(server, "red")["id"]
    response = httpx.put(f"{server}/api/photos/{photo_id}/caption", json=body)
    assert response.status_code == 422 and response.json()["detail"]
    assert httpx.get(f"{server}/api/photos/{photo_id}").json()["caption_source"] == "machine"


def test_caption_of_an_unknown_photo_is_404(server: str) -> None:
    response = httpx.put(f"{server}/api/photos/999999/caption", json={"caption": "who?"})
    assert response.status_code == 404 and "no photo with id" in response.json()["detail"]


@pytest.fixture
def metadata_server(tmp_path: Path, embedder, colour_captioner) -> Iterator[str]:
    """A server over one photo with full EXIF, under a name that is not valid UTF-8."""
    import os

    from tests.indexer.test_metadata import SYDNEY, photo_with_exif

    root = tmp_path / "meta"
    root.mkdir()
    photo_with_exif(root / os.fsdecode(b"\xe9t\xe9.jpg"), orientation=6, gps=SYDNEY)
    settings = Settings(data_dir=tmp_path / "meta-data", captioner="test-colour")
    Indexer(settings, Database(settings.db_url), embedder=embedder).run([root])
    yield from _serve(settings)


def _serve(settings: Settings) -> Iterator[str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
    instance = uvicorn.Server(config)
    thread = threading.Thread(target=instance.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 120  # a start-up, not a timing
    while not instance.started:
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    instance.should_exit = True
    thread.join(10)


def test_photo_metadata_includes_exif_lens_and_gps(metadata_server: str) -> None:
    hit = hit_for(metadata_server, "a picture")
    photo = httpx.get(f"{metadata_server}/api/photos/{hit['id']}").json()
    assert (photo["width"], photo["height"]) == (40, 60)  # stored 60x40, EXIF-rotated
    assert photo["taken_at"] == "2021-05-06T07:08:09"
    assert (photo["camera_make"], photo["camera_model"]) == ("Canon", "Canon EOS R5")
    assert photo["lens"] == "Canon RF24-105mm F4 L IS USM"
    assert photo["latitude"] == pytest.approx(-33.8598583) and photo["longitude"] == pytest.approx(151.2111111)


def test_a_photo_whose_name_is_not_utf8_is_served(metadata_server: str) -> None:
    hit = hit_for(metadata_server, "a picture")
    assert hit["path"].endswith("/\\xe9t\\xe9.jpg")  # shown readably, stored losslessly
    original = httpx.get(f"{metadata_server}/api/photos/{hit['id']}/file")
    assert original.status_code == 200 and original.content[:2] == b"\xff\xd8"
