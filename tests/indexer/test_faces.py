"""The faces stage on real faces (shared/data/faces): detection, grouping into people, a new
version redone without captioning, human assignments surviving re-indexing and re-grouping."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import select

from capdex.captioners.faces import FaceEngine
from capdex.embedder import Embedder
from capdex.indexer import people as grouping
from capdex.indexer.pipeline import Indexer
from capdex.settings import Settings
from capdex.store import people
from capdex.store.db import Database
from capdex.store.models import HUMAN, Face, File, PhotoWords
from tests.conftest import ColourCaptioner
from tests.faces_data import PEOPLE, copy_labelled, needs_faces


@pytest.fixture(autouse=True)
def _faces_installed() -> None:
    needs_faces()


@pytest.fixture
def library(tmp_path: Path) -> Path:
    return copy_labelled(tmp_path / "photos")


@pytest.fixture
def db(db_settings: Settings) -> Database:
    return Database(db_settings.db_url)


def folder_of_faces(db: Database) -> dict[int, list[str]]:
    """{person id: [labelled folder of each of their faces]}."""
    with db.read() as session:
        rows = session.execute(select(Face.person_id, File.path).join(
            File, File.photo_id == Face.photo_id)).all()
    out: dict[int, list[str]] = {}
    for person_id, path in rows:
        out.setdefault(person_id, []).append(Path(path).parent.name)
    return out


def purity_and_completeness(groups: dict[int, list[str]]) -> tuple[float, float]:
    """Purity: faces in their group's majority folder; completeness: faces of a folder in its
    largest group (both over all faces)."""
    total = sum(len(v) for v in groups.values())
    purity = sum(Counter(v).most_common(1)[0][1] for v in groups.values()) / total
    by_folder: dict[str, Counter[int]] = {}
    for person_id, folders in groups.items():
        for folder in folders:
            by_folder.setdefault(folder, Counter())[person_id] += 1
    completeness = sum(c.most_common(1)[0][1] for c in by_folder.values()) / total
    return purity, completeness


def test_faces_are_found_and_grouped_one_person_per_folder(
        library, db_settings, db, embedder: Embedder, colour_captioner) -> None:
    summary = Indexer(db_settings, db, embedder=embedder, ocr=False, faces=True).run([library])

    assert summary.faces_scanned == 9 and summary.faces_found == 9
    groups = folder_of_faces(db)
    purity, completeness = purity_and_completeness(groups)
    print(f"grouping: purity {purity:.2f}, completeness {completeness:.2f}, "
          f"{len(groups)} people for {len(PEOPLE)} folders")
    assert purity == 1.0 and completeness == 1.0 and len(groups) == len(PEOPLE)
    with db.read() as session:
        listed = people.list_people(session)
        assert sorted(p.faces for p in listed) == [1, 2, 2, 2, 2]
        assert all(p.name is None for p in listed)
        faces = session.scalars(select(Face)).all()
        assert all(0 <= f.box_x < 1 and 0 < f.box_w <= 1 and f.descriptor for f in faces)
    again = Indexer(db_settings, db, embedder=embedder, ocr=False, faces=True).run([library])
    assert again.faces_scanned == 0 and not again.did_something  # unchanged photos cost nothing


def test_a_new_engine_version_finds_faces_again_without_captioning_and_keeps_human_work(
        library, db_settings, db, embedder: Embedder, colour_captioner) -> None:
    Indexer(db_settings, db, embedder=embedder, ocr=False, faces=True).run([library])
    groups = folder_of_faces(db)
    obama = next(p for p, folders in groups.items() if folders[0] == "obama")
    biden = next(p for p, folders in groups.items() if folders[0] == "biden")
    with db.session() as session:
        people.name_person(session, obama, "Barack Obama")
        confirmed = session.scalars(select(Face.id).where(Face.person_id == obama)).first()
        people.assign_face(session, confirmed, obama)
        not_him = session.scalars(select(Face.id).where(Face.person_id == biden)).first()
        people.assign_face(session, not_him, None)  # "not this person"
    captioned = ColourCaptioner.captioned()

    newer = FaceEngine(detect_side=900)  # another version: looked at again
    summary = Indexer(db_settings, db, embedder=embedder, ocr=False, faces=True,
                      face_engine=newer).run([library])

    assert summary.faces_scanned == 9 and ColourCaptioner.captioned() == captioned
    with db.read() as session:
        kept = {f.person_id: f for f in session.scalars(select(Face).where(
            Face.assigned_by == HUMAN))}
        assert set(kept) == {obama, None}
        assert all(f.version == newer.version for f in kept.values())
        assert len(session.scalars(select(Face)).all()) == 9
        assert [p.faces for p in people.list_people(session) if p.name] == [2]
    with db.session() as session:
        grouping.regroup(session)
    with db.read() as session:
        assert session.get(Face, kept[None].id).person_id is None  # regrouping never moves it
        assert session.get(Face, kept[obama].id).person_id == obama
        named = [p for p in people.list_people(session) if p.name == "Barack Obama"]
        assert len(named) == 1 and named[0].faces == 2 and named[0].id == obama
        assert sum(p.faces for p in people.list_people(session)) == 8


def test_regrouping_keeps_groups_and_named_people_pull_new_faces(
        library, db_settings, db, embedder: Embedder, colour_captioner) -> None:
    Indexer(db_settings, db, embedder=embedder, ocr=False, faces=True).run([library])
    before = folder_of_faces(db)
    with db.session() as session:
        result = grouping.regroup(session)
    assert result["moved"] == 0 and folder_of_faces(db) == before

    # split Obama's faces apart by hand-free means: each face its own person, one named
    with db.session() as session:
        faces = session.scalars(select(Face).join(File, File.photo_id == Face.photo_id)
                                .where(File.path.contains("/obama/"))).all()
        first = people.new_person(session, "Barack Obama")
        second = people.new_person(session)
        people.machine_assign(session, [faces[0]], first.id)
        people.machine_assign(session, [faces[1]], second.id)
        people.refresh_centroids(session, [first.id, second.id])
        grouping.regroup(session)
    with db.read() as session:
        named = [p for p in people.list_people(session) if p.name == "Barack Obama"]
        assert len(named) == 1 and named[0].faces == 2
        assert len(people.list_people(session)) == len(PEOPLE)


def test_faces_found_on_spark_executors_are_imported_and_grouped(
        tmp_path: Path, settings: Settings, embedder: Embedder) -> None:
    """A Spark executor with CAPDEX_FACES=true ships the stage's results in its Parquet `stages`
    column; `capdex import` writes them with the same `write` (no model loaded here)."""
    import json

    import pandas as pd
    from PIL import Image

    from capdex.indexer.importer import import_parquet
    from capdex.indexer.read import hash_file
    from capdex.indexer.spark_job import COLUMNS

    library = copy_labelled(tmp_path / "photos")
    engine = FaceEngine()
    rows = []
    for path in sorted(library.glob("obama/*.jpg")):
        with Image.open(path) as image:
            found = [f.as_dict() for f in engine.find(image.convert("RGB"))]
        row = dict.fromkeys(COLUMNS)
        row.update(path=str(path), size=path.stat().st_size, mtime_ns=path.stat().st_mtime_ns,
                   content_hash=hash_file(str(path)), caption="a man in a suit",
                   captioner="elsewhere", embedder="another-model", dim=2, vector=[1.0, 0.0],
                   stages=json.dumps({"faces": {"version": engine.version, "result": found}}))
        rows.append(row)
    source = tmp_path / "run.parquet"
    pd.DataFrame(rows, columns=COLUMNS).to_parquet(source)
    db = Database(settings.db_url)
    import_parquet(settings, db, source, embedder=embedder)
    with db.read() as session:
        listed = people.list_people(session)
        assert [(p.faces, p.photos) for p in listed] == [(2, 2)]  # one person, both photos
        assert people.stale_photos(session, engine.version) == []
    db.close()


def test_a_library_without_faces_a_crowd_and_a_tiny_image_are_all_accounted_for(
        tmp_path: Path, colour_folder: Path, settings: Settings, embedder: Embedder,
        colour_captioner) -> None:
    """No faces: nothing stored, no error; 50 faces in one photo: every one stored with a
    person; a 16-pixel image: looked at, no crash."""
    from PIL import Image, ImageOps

    from tests.faces_data import faces_folder

    with Image.open(faces_folder() / "obama" / "obama2.jpg") as image:
        portrait = ImageOps.exif_transpose(image).convert("RGB")
    x, y, w, h = FaceEngine().find(portrait)[0].box
    width, height = portrait.size
    face = portrait.crop((int((x - w / 5) * width), int((y - h / 5) * height),
                          int((x + w * 1.2) * width), int((y + h * 1.2) * height)))
    # 50 faces of ~100 px at the detection size (1024 px): a crowd HOG can see
    crowd = Image.new("RGB", (1020, 510), (90, 90, 90))
    for i in range(50):
        crowd.paste(face.resize((102, 102)), ((i % 10) * 102, (i // 10) * 102))
    crowd.save(colour_folder / "crowd.jpg", quality=90)
    Image.new("RGB", (16, 16), (200, 150, 120)).save(colour_folder / "tiny.jpg")
    db = Database(settings.db_url)

    summary = Indexer(settings, db, embedder=embedder, ocr=False, faces=True).run([colour_folder])

    assert summary.failed == 0 and summary.faces_scanned == 8
    assert summary.faces_found == 50
    with db.read() as session:
        faces = session.scalars(select(Face)).all()
        assert len(faces) == summary.faces_found and all(f.person_id for f in faces)
        assert people.stale_photos(session, FaceEngine().version) == []
        words = session.execute(select(PhotoWords.text).where(PhotoWords.kind == "people")).all()
        assert [w for (w,) in words] == ["a group of people group photo"]


def test_faces_on_without_the_extra_stop_before_changing_anything(
        library: Path, settings: Settings, embedder: Embedder, colour_captioner,
        monkeypatch: pytest.MonkeyPatch) -> None:
    from capdex.captioners import faces as engine_module
    from capdex.indexer.pipeline import IndexerError

    real = engine_module.importlib.util.find_spec
    monkeypatch.setattr(engine_module.importlib.util, "find_spec",
                        lambda name, *a: None if name == "dlib" else real(name, *a))
    db = Database(settings.db_url)
    with pytest.raises(IndexerError, match=r"capdex\[faces\]"):
        Indexer(settings, db, embedder=embedder, ocr=False, faces=True).run([library])
    with db.read() as session:
        assert session.scalars(select(File)).all() == []
    assert ColourCaptioner.captioned() == 0
