"""Human captions, from people and from XMP sidecars, through real index runs."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select

from capdex.embedder import Embedder
from capdex.settings import Settings
from capdex.indexer.human import CaptionRejected, PhotoNotFound, clear_human_caption, set_human_caption
from capdex.indexer.pipeline import Indexer
from capdex.indexer.xmp import read_sidecar
from capdex.search.engine import SearchEngine
from capdex.store.db import Database
from capdex.store.models import Caption, File, Vector
from capdex.store.vectors import VectorIndex
from tests.conftest import ColourCaptioner

DC = ('<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/'
      '22-rdf-syntax-ns#"><rdf:Description xmlns:dc="http://purl.org/dc/elements/1.1/">{}'
      "</rdf:Description></rdf:RDF></x:xmpmeta>")


def xmp(description: str | None) -> str:
    body = ("" if description is None else
            f'<dc:description><rdf:Alt><rdf:li xml:lang="x-default">{description}</rdf:li>'
            "</rdf:Alt></dc:description>")
    return DC.format(body)


@pytest.fixture
def db(settings: Settings) -> Database:
    return Database(settings.db_url)


@pytest.fixture
def run(settings: Settings, db: Database, embedder: Embedder, colour_captioner):
    def _run(*roots: Path, **kwargs):
        return Indexer(settings, db, embedder=embedder, **kwargs).run(roots)

    return _run


def photo_id_of(db: Database, path: Path) -> int:
    with db.read() as session:
        return session.scalar(select(File.photo_id).where(File.path == str(path)))


def captions_of(db: Database, photo_id: int) -> dict[str, tuple[str, str | None]]:
    with db.read() as session:
        rows = session.scalars(select(Caption).where(Caption.photo_id == photo_id)).all()
    return {c.source: (c.text, c.captioner) for c in rows}


def top_hit(settings: Settings, db: Database, embedder: Embedder, query: str) -> tuple[str, str]:
    hit = SearchEngine(settings, db, embedder).search(query, k=1).results[0]
    return Path(hit.path).name, hit.caption


def vector_matches(db: Database, embedder: Embedder, photo_id: int, text: str) -> bool:
    with db.read() as session:
        [blob] = session.scalars(select(Vector.vector).where(Vector.photo_id == photo_id,
                                                             Vector.embedder == embedder.name)).all()
    return bool(np.allclose(np.frombuffer(blob, np.float32), embedder.embed([text])[0], atol=1e-5))


def test_a_sidecar_description_becomes_the_human_caption(run, colour_folder, settings, db, embedder) -> None:
    (colour_folder / "red.jpg.xmp").write_text(xmp("grandma's birthday cake"))
    summary = run(colour_folder)
    assert summary.new == 6 and summary.sidecar_captions == 1
    photo = photo_id_of(db, colour_folder / "red.jpg")
    assert captions_of(db, photo) == {"machine": ("a plain red picture", "test-colour"),
                                      "human": ("grandma's birthday cake", "xmp")}
    assert vector_matches(db, embedder, photo, "grandma's birthday cake")
    assert top_hit(settings, db, embedder, "birthday cake") == ("red.jpg", "grandma's birthday cake")


def test_sidecar_edits_update_the_caption_without_recaptioning(run, colour_folder, db, embedder) -> None:
    sidecar = colour_folder / "nested" / "green.xmp"  # the IMG.xmp form
    sidecar.write_text(xmp("a meadow"))
    run(colour_folder)
    photo = photo_id_of(db, colour_folder / "nested" / "green.jpg")
    ColourCaptioner.calls = []
    sidecar.write_text(xmp("a meadow full of sheep"))
    summary = run(colour_folder)
    assert ColourCaptioner.captioned() == 0 and summary.sidecar_captions == 1
    assert captions_of(db, photo)["human"] == ("a meadow full of sheep", "xmp")
    assert vector_matches(db, embedder, photo, "a meadow full of sheep")

    sidecar.write_text(xmp(None))  # the person cleared the description
    run(colour_folder)
    assert "human" not in captions_of(db, photo)
    assert vector_matches(db, embedder, photo, "a plain green picture")

    sidecar.write_text(xmp("sheep again"))
    run(colour_folder)
    sidecar.unlink()  # a deleted sidecar takes nothing away
    run(colour_folder)
    assert captions_of(db, photo)["human"] == ("sheep again", "xmp")


def test_an_unchanged_sidecar_is_not_read_again(run, colour_folder, monkeypatch) -> None:
    (colour_folder / "red.jpg.xmp").write_text(xmp("cake"))
    run(colour_folder)
    import capdex.indexer.sidecars

    def fail(path: str):
        raise AssertionError(f"{path} was read again")

    monkeypatch.setattr(capdex.indexer.sidecars, "read_sidecar", fail)
    assert run(colour_folder).sidecar_captions == 0


def test_a_broken_sidecar_loses_nothing(run, colour_folder, db) -> None:
    (colour_folder / "red.jpg.xmp").write_bytes(b"<not xml")
    summary = run(colour_folder)
    assert summary.new == 6 and summary.failed == 0
    assert captions_of(db, photo_id_of(db, colour_folder / "red.jpg"))["machine"][0] == "a plain red picture"


def test_a_person_s_caption_outranks_machines_and_sidecars(run, colour_folder, settings, db, embedder, monkeypatch) -> None:
    run(colour_folder)
    photo = photo_id_of(db, colour_folder / "blue.jpg")
    change = set_human_caption(db, embedder, photo, "  our boat,\n on the lake  ")
    assert change.removed and len(change.added) == 1
    assert captions_of(db, photo)["human"] == ("our boat, on the lake", None)
    assert vector_matches(db, embedder, photo, "our boat, on the lake")

    monkeypatch.setattr(ColourCaptioner, "version", "2")
    summary = run(colour_folder, recaption=True)
    assert summary.recaptioned == 5  # every photo but the one a person captioned
    assert captions_of(db, photo)["human"] == ("our boat, on the lake", None)
    assert vector_matches(db, embedder, photo, "our boat, on the lake")

    (colour_folder / "blue.jpg.xmp").write_text(xmp("from a sidecar"))
    run(colour_folder)
    assert captions_of(db, photo)["human"] == ("our boat, on the lake", None)
    assert top_hit(settings, db, embedder, "boat on a lake")[0] == "blue.jpg"

    clear_human_caption(db, embedder, photo)
    assert "human" not in captions_of(db, photo)
    assert vector_matches(db, embedder, photo, "a plain blue picture")


def test_bad_caption_edits_are_refused(run, colour_folder, db, embedder) -> None:
    run(colour_folder)
    photo = photo_id_of(db, colour_folder / "red.jpg")
    with pytest.raises(CaptionRejected, match="empty"):
        set_human_caption(db, embedder, photo, " \n ")
    with pytest.raises(CaptionRejected, match="longer than"):
        set_human_caption(db, embedder, photo, "x" * 2001)
    with pytest.raises(PhotoNotFound):
        set_human_caption(db, embedder, 999_999, "nobody")


def test_write_xmp_writes_sidecars_and_never_touches_photos(run, colour_folder, db, monkeypatch) -> None:
    (colour_folder / "red.jpg.xmp").write_text(xmp("a person wrote this"))
    before = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in colour_folder.rglob("*.jpg")}
    summary = run(colour_folder, write_xmp=True)
    assert summary.sidecars_written == 5  # not over the person's sidecar
    assert {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in colour_folder.rglob("*.jpg")} == before
    assert read_sidecar(str(colour_folder / "red.jpg.xmp")).description == "a person wrote this"
    written = read_sidecar(str(colour_folder / "nested" / "green.jpg.xmp"))
    assert written.description == "a plain green picture" and written.human_caption is None

    again = run(colour_folder, write_xmp=True)
    assert again.sidecars_written == 0 and again.sidecar_captions == 0  # our own words: not human
    with db.read() as session:
        assert session.scalar(select(Caption.id).where(Caption.source == "human",
                                                       Caption.captioner == "xmp")) is not None
        assert len(session.scalars(select(Caption.id).where(Caption.source == "human")).all()) == 1

    monkeypatch.setattr(ColourCaptioner, "version", "2")
    assert run(colour_folder, recaption=True, write_xmp=True).sidecars_written == 5


def test_a_read_only_folder_is_reported_not_fatal(run, colour_folder, monkeypatch) -> None:
    import capdex.indexer.xmp

    def refuse(path, data):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(capdex.indexer.xmp, "atomic_write_bytes", refuse)
    summary = run(colour_folder, write_xmp=True)
    assert summary.new == 6 and summary.sidecars_written == 0 and summary.sidecars_failed == 6
    assert not list(colour_folder.rglob("*.xmp"))


def test_the_index_file_always_matches_the_database_after_an_edit(run, colour_folder, settings, db, embedder) -> None:
    run(colour_folder)
    engine = SearchEngine(settings, db, embedder)
    change = set_human_caption(db, embedder, photo_id_of(db, colour_folder / "red.jpg"), "a fire truck")
    change.apply_to(engine.index, db)
    on_disk = VectorIndex(settings.index_path, embedder.name, 384)
    assert on_disk.load()
    with db.read() as session:
        assert sorted(on_disk.ids().tolist()) == sorted(session.scalars(select(Vector.id)).all())
    assert engine.search("fire truck", k=1).results[0].caption == "a fire truck"
    assert not [n for n in os.listdir(settings.data_dir) if n.endswith(".tmp")]
