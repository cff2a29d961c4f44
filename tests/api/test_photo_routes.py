"""Browsing, large previews and image caching over real HTTP."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from PIL import Image

from capdex.api.app import create_app
from capdex.settings import Settings
from capdex.indexer.pipeline import Indexer
from capdex.store.db import Database
from tests.api.serving import configured, serving
from tests.conftest import write_colour_photo

http = httpx.Client(timeout=60)
KEY = "k" * 24


@pytest.fixture
def indexed(settings: Settings, colour_folder: Path, embedder, colour_captioner) -> Settings:
    write_colour_photo(colour_folder / "big" / "wide.jpg", "green", size=(2400, 1200), seed=42)
    Indexer(settings, Database(settings.db_url), embedder=embedder).run([colour_folder])
    return settings


@pytest.fixture
def server(indexed: Settings) -> Iterator[str]:
    with serving(create_app(indexed)) as url:
        yield url


def test_browse_lists_every_photo_once_in_pages(server: str) -> None:
    first = http.get(f"{server}/api/photos", params={"limit": 4}).json()
    second = http.get(f"{server}/api/photos", params={"limit": 4, "offset": 4}).json()
    assert first["total"] == second["total"] == 7
    ids = [p["id"] for p in first["results"] + second["results"]]
    assert len(ids) == len(set(ids)) == 7
    assert all(p["caption"].startswith("a plain") and p["path"] for p in first["results"])


@pytest.mark.parametrize("params", [{"limit": 0}, {"limit": 201}, {"offset": -1}, {"limit": "x"}])
def test_bad_browse_requests_are_422(server: str, params: dict) -> None:
    assert http.get(f"{server}/api/photos", params=params).status_code == 422


def test_preview_is_upright_webp_at_most_1600_and_cached(server: str, indexed: Settings) -> None:
    photo = next(p for p in http.get(f"{server}/api/photos").json()["results"]
                 if p["path"].endswith("wide.jpg"))
    response = http.get(f"{server}/api/photos/{photo['id']}/preview")
    assert response.status_code == 200 and response.headers["content-type"] == "image/webp"
    with Image.open(io.BytesIO(response.content)) as image:
        assert image.size == (1600, 800)
    assert list((indexed.data_dir / "previews").rglob("*.webp"))
    again = http.get(f"{server}/api/photos/{photo['id']}/preview",
                     headers={"If-None-Match": response.headers["etag"]})
    assert again.status_code == 304 and not again.content


def test_thumbnails_revalidate_with_etag_and_are_public_without_a_key(server: str) -> None:
    photo = http.get(f"{server}/api/photos", params={"limit": 1}).json()["results"][0]
    first = http.get(f"{server}/api/photos/{photo['id']}/thumbnail")
    assert first.status_code == 200 and first.headers["cache-control"].startswith("public")
    assert "max-age=86400" in first.headers["cache-control"]
    second = http.get(f"{server}/api/photos/{photo['id']}/thumbnail",
                      headers={"If-None-Match": first.headers["etag"]})
    assert second.status_code == 304


def test_with_a_key_images_are_private_to_the_browser(indexed: Settings) -> None:
    with serving(create_app(configured(indexed, api_key=KEY))) as url:
        headers = {"X-API-Key": KEY}
        photo = http.get(f"{url}/api/photos", headers=headers).json()["results"][0]
        thumb = http.get(f"{url}/api/photos/{photo['id']}/thumbnail", headers=headers)
        assert thumb.status_code == 200 and thumb.headers["cache-control"].startswith("private")
        assert http.get(f"{url}/api/photos/{photo['id']}/thumbnail").status_code == 401


@pytest.mark.parametrize("photo_id", ["999999", "0", "-1", str(2**63), str(2**80), "1.5", "abc"])
def test_unknown_or_malformed_ids_are_4xx(server: str, photo_id: str) -> None:
    for suffix in ("", "/thumbnail", "/preview", "/file"):
        response = http.get(f"{server}/api/photos/{photo_id}{suffix}")
        assert response.status_code in (404, 422), (photo_id, suffix, response.text)


def test_a_photo_whose_file_is_gone_is_404_not_500(server: str, colour_folder: Path) -> None:
    photo = next(p for p in http.get(f"{server}/api/photos").json()["results"]
                 if p["path"].endswith("red.jpg"))
    (colour_folder / "red.jpg").unlink()
    for suffix in ("/preview", "/file"):
        response = http.get(f"{server}/api/photos/{photo['id']}{suffix}")
        assert response.status_code == 404 and "no file on disk" in response.json()["detail"]
