"""People over HTTP and the CLI, on the shared face photos: the issue's JSON shapes, naming,
merging, moving a face, forgetting, face crops, the `person` filter, and the end-to-end check a
new user would make (index everything, name each group from its labelled photos, search)."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from PIL import Image
from typer.testing import CliRunner

from capdex.api.app import create_app
from capdex.api.cli import app as cli
from capdex.indexer.pipeline import Indexer
from capdex.settings import Settings
from capdex.store.db import Database
from tests.api.serving import serving
from tests.faces_data import PEOPLE, UNLABELLED, copy_all, needs_faces


@pytest.fixture(autouse=True)
def _faces_installed() -> None:
    needs_faces()


@pytest.fixture
def indexed(tmp_path: Path, db_settings: Settings, embedder, colour_captioner) -> Settings:
    library = copy_all(tmp_path / "photos")
    summary = Indexer(db_settings, Database(db_settings.db_url), embedder=embedder, ocr=False,
                      faces=True).run([library])
    assert summary.failed == 0 and summary.faces_scanned == 15
    return db_settings


def photo_ids(url: str) -> dict[str, int]:
    """{"folder/file": photo id} of every indexed photo."""
    listed = httpx.get(f"{url}/api/photos", params={"limit": 200}).json()["results"]
    return {"/".join(Path(p["path"]).parts[-2:]): p["id"] for p in listed}


def name_from_labelled(url: str, ids: dict[str, int]) -> dict[str, int]:
    """Name each person from their labelled photos over the API, as a new user would;
    {folder: person id}."""
    named = {}
    for key, photo_id in sorted(ids.items()):
        folder = key.split("/")[0]
        if folder not in PEOPLE or folder in named:
            continue
        faces = httpx.get(f"{url}/api/photos/{photo_id}").json()["faces"]
        assert len(faces) == 1, key
        reply = httpx.put(f"{url}/api/people/{faces[0]['person_id']}",
                          json={"name": PEOPLE[folder]})
        assert reply.status_code == 200 and reply.json()["name"] == PEOPLE[folder]
        named[folder] = faces[0]["person_id"]
    return named


def test_a_new_user_names_each_group_and_finds_them_by_name(indexed: Settings) -> None:
    with serving(create_app(indexed)) as url:
        ids = photo_ids(url)
        named = name_from_labelled(url, ids)
        assert len(set(named.values())) == len(PEOPLE)
        listed = httpx.get(f"{url}/api/people").json()["people"]
        assert {p["name"] for p in listed} >= set(PEOPLE.values())
        assert all({"id", "name", "faces", "photos"} <= set(p) for p in listed)
        for folder, name in PEOPLE.items():
            theirs = {f"unlabelled/{f}" for f, who in UNLABELLED.items() if folder in who}
            for query in (name, name.split()[-1].lower()):
                found = httpx.get(f"{url}/api/search", params={"q": query, "k": 5}).json()
                top = {"/".join(Path(r["path"]).parts[-2:]) for r in found["results"]}
                assert theirs <= top, (query, top)
            only = httpx.get(f"{url}/api/search", params={"q": "photo", "person": name,
                                                          "min_score": -1, "k": 50}).json()
            shown = {"/".join(Path(r["path"]).parts[-2:]) for r in only["results"]}
            assert theirs <= shown and all(s.startswith((folder, "unlabelled")) for s in shown)
        by_id = httpx.get(f"{url}/api/search", params={"q": "photo", "min_score": -1,
                                                       "person": named["obama"]}).json()
        assert by_id["total"] == 2 + 3  # obama/ and three unlabelled photos
        photos = httpx.get(f"{url}/api/people/{named['obama']}/photos").json()
        assert photos["person"]["name"] == "Barack Obama" and len(photos["results"]) == 5
        assert {"id", "path", "caption"} <= set(photos["results"][0])
        # a name plus words: that person's photos matching the words come first
        for key in ("unlabelled/obama1.jpg", "obama/obama2.jpg"):
            caption = httpx.get(f"{url}/api/photos/{ids[key]}").json()["caption"]
            colour = caption.split()[2]  # "a plain <colour> picture"
            found = httpx.get(f"{url}/api/search", params={"q": f"obama {colour}"}).json()
            first = found["results"][0]
            assert "obama" in first["path"] and colour in first["caption"], (key, found)
        # "people" finds photos of one person too, not only groups
        everyone = httpx.get(f"{url}/api/search", params={"q": "people", "k": 50,
                                                           "mode": "keyword"}).json()
        assert ids["unlabelled/obama1.jpg"] in {r["id"] for r in everyone["results"]}
        group = httpx.get(f"{url}/api/search", params={"q": "two people", "k": 5}).json()
        assert "unlabelled/kit_with_rose.jpg" in {"/".join(Path(r["path"]).parts[-2:])
                                                  for r in group["results"]}


def test_merge_move_forget_and_face_crops(indexed: Settings,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    with serving(create_app(indexed)) as url:
        ids = photo_ids(url)
        named = name_from_labelled(url, ids)
        obama, biden = named["obama"], named["biden"]
        face = httpx.get(f"{url}/api/photos/{ids['obama/obama.jpg']}").json()["faces"][0]
        crop = httpx.get(f"{url}/api/faces/{face['id']}/thumbnail")
        assert crop.status_code == 200 and crop.headers["content-type"] == "image/webp"
        from io import BytesIO

        assert max(Image.open(BytesIO(crop.content)).size) <= 160
        assert httpx.get(f"{url}/api/faces/999999/thumbnail").status_code == 404

        moved = httpx.put(f"{url}/api/faces/{face['id']}", json={"person_id": biden}).json()
        assert moved["person_id"] == biden and moved["assigned_by"] == "human"
        back = httpx.put(f"{url}/api/faces/{face['id']}", json={"person_id": obama}).json()
        assert back["person_id"] == obama
        assert httpx.put(f"{url}/api/faces/{face['id']}",
                         json={"person_id": 999999}).status_code == 404

        before = {p["id"]: p for p in httpx.get(f"{url}/api/people").json()["people"]}
        merged = httpx.post(f"{url}/api/people/{biden}/merge", json={"into": obama})
        assert merged.status_code == 200 and merged.json()["name"] == "Barack Obama"
        assert merged.json()["faces"] == before[obama]["faces"] + before[biden]["faces"]
        assert httpx.post(f"{url}/api/people/{obama}/merge",
                          json={"into": obama}).status_code == 422
        assert httpx.put(f"{url}/api/people/{biden}", json={"name": "x"}).status_code == 404

    runner = CliRunner()
    data = ["--data-dir", str(indexed.data_dir)]
    if indexed.database_url:  # the CLI on the same database (PostgreSQL)
        monkeypatch.setenv("CAPDEX_DATABASE_URL", indexed.database_url)
    listed = runner.invoke(cli, ["people", "list", "--json", *data])
    assert listed.exit_code == 0, listed.output
    people = {p["name"]: p for p in json.loads(listed.output)["people"]}
    rose = people["Rose Leslie"]["id"]
    forgot = runner.invoke(cli, ["people", "forget", str(rose), *data])
    assert forgot.exit_code == 0 and "3 face(s)" in forgot.output  # 2 labelled, 1 with Kit
    after = json.loads(runner.invoke(cli, ["people", "list", "--json", *data]).output)
    assert "Rose Leslie" not in {p["name"] for p in after["people"]}
    gone = runner.invoke(cli, ["search", "photo", "--person", "Rose Leslie", "--json", *data])
    assert gone.exit_code == 0 and json.loads(gone.output)["results"] == []
    with serving(create_app(indexed)) as url:
        rose_photo = photo_ids(url)["rose_leslie/img1.jpg"]
        faces = httpx.get(f"{url}/api/photos/{rose_photo}").json()["faces"]
        assert [(f["person_id"], f["assigned_by"]) for f in faces] == [(None, "human")]
    from sqlalchemy import select

    from capdex.store.models import Face

    with Database(indexed.db_url).read() as session:
        dropped = session.scalars(select(Face).where(Face.id == faces[0]["id"])).one()
        assert dropped.descriptor is None  # forgetting drops the descriptor, not just the name
    regroup = runner.invoke(cli, ["people", "regroup", "--json", *data])
    assert regroup.exit_code == 0
    again = json.loads(runner.invoke(cli, ["people", "list", "--json", *data]).output)
    assert "Rose Leslie" not in {p["name"] for p in again["people"]}  # forgotten stays so
    assert runner.invoke(cli, ["people", "name", "999999", "X", *data]).exit_code != 0
    renamed = runner.invoke(cli, ["people", "name", str(people["Kit Harington"]["id"]),
                                  "Jon Snow", *data])
    assert renamed.exit_code == 0 and "Jon Snow" in renamed.output
    found = runner.invoke(cli, ["search", "snow", "--person", "Jon Snow", "--json", *data])
    paths = [r["path"] for r in json.loads(found.output)["results"]]
    assert paths and all("kit" in p or "johnsnow" in p for p in paths)
