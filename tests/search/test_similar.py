"""Similar photos by what they look like, on the sample photos and the real tagger (issue 19):
a re-encoded copy is a photo's first neighbour, other scenes score clearly lower; a photo with
no looks falls back to caption vectors; photos indexed before looks were kept get them on the
next run, without captioning again, and the network runs once per photo."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from PIL import Image
from sqlalchemy import delete, func, select

from capdex.captioners.tagger import TaggerCaptioner
from capdex.indexer.pipeline import Indexer
from capdex.samples import write_samples
from capdex.search.engine import SearchEngine
from capdex.settings import Settings
from capdex.store import looks
from capdex.store.db import Database
from capdex.store.models import Caption, File, PhotoLooks
from tests.api.test_app import _serve
from tests.consistency import assert_looks_consistent

pytestmark = pytest.mark.slow

COPY = "chelsea-copy.jpg"
ORIGINAL = "chelsea-the-cat.png"


def reencoded_copy(source: Path, dest: Path) -> Path:
    """The same picture as another file: two thirds the size, JPEG quality 60."""
    with Image.open(source) as image:
        smaller = image.convert("RGB").resize((image.width * 2 // 3, image.height * 2 // 3))
    smaller.save(dest, quality=60)
    return dest


@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory, embedder) -> tuple[Settings, Database]:
    root = tmp_path_factory.mktemp("similar")
    photos = root / "photos"
    written = write_samples(photos)
    reencoded_copy(next(p for p in written if p.name == ORIGINAL), photos / COPY)
    settings = Settings(data_dir=root / "data", ocr=False)
    db = Database(settings.db_url)
    Indexer(settings, db, embedder=embedder).run([photos])
    return settings, db


def ids_by_name(db: Database) -> dict[str, int]:
    with db.read() as session:
        return {Path(f.path).name: f.photo_id for f in session.scalars(select(File))}


def test_every_tagged_photo_has_looks_in_the_index(library: tuple[Settings, Database]) -> None:
    settings, db = library
    with db.read() as session:
        assert session.scalar(select(func.count(PhotoLooks.id))) == len(ids_by_name(db))
    assert (settings.data_dir / looks.INDEX_FILE).is_file()


def test_a_reencoded_copy_is_the_first_neighbour(library: tuple[Settings, Database],
                                                 embedder) -> None:
    settings, db = library
    ids = ids_by_name(db)
    engine = SearchEngine(settings, db, embedder)
    for photo, twin in ((COPY, ORIGINAL), (ORIGINAL, COPY)):
        found = engine.similar(ids[photo], k=8)
        assert found.by == "looks"
        first, rest = found.results[0], found.results[1:]
        assert first.id == ids[twin], [(h.path, h.score) for h in found.results]
        assert first.match["looks"]["near_duplicate"] and first.score > 0.85
        assert rest and all(h.score < first.score - 0.4 for h in rest)  # clearly lower
        assert not any(h.match["looks"]["near_duplicate"] for h in rest)
        assert all("caption" in h.match for h in found.results)


def test_unrelated_photos_are_not_near_duplicates(library: tuple[Settings, Database],
                                                  embedder) -> None:
    settings, db = library
    ids = ids_by_name(db)
    engine = SearchEngine(settings, db, embedder)
    found = engine.similar(ids["coffee-cup.png"], k=5)
    assert found.by == "looks" and len(found.results) == 5
    assert all(h.score < 0.6 for h in found.results)
    assert [h.score for h in found.results] == sorted((h.score for h in found.results),
                                                      reverse=True)


def test_the_api_shows_scores_and_how_they_were_found(library: tuple[Settings, Database]) -> None:
    settings, db = library
    ids = ids_by_name(db)
    served: Iterator[str] = _serve(settings)
    server = next(served)
    try:
        data = httpx.get(f"{server}/api/photos/{ids[COPY]}/similar", params={"k": 3}).json()
    finally:
        next(served, None)
    assert data["by"] == "looks" and len(data["results"]) == 3
    first = data["results"][0]
    assert first["id"] == ids[ORIGINAL] and first["score"] > 0.85
    assert first["match"]["looks"]["near_duplicate"] is True
    assert 0 < first["match"]["caption"]["score"] <= 1.0


@pytest.fixture
def small_library(tmp_path: Path) -> tuple[Settings, Database, Path]:
    """Four sample photos and "copy.jpg", a re-encoded copy of the astronaut."""
    photos = tmp_path / "photos"
    written = write_samples(photos)
    for extra in written[4:]:
        extra.unlink()
    reencoded_copy(photos / "astronaut-eileen-collins.png", photos / "copy.jpg")
    settings = Settings(data_dir=tmp_path / "data", ocr=False)
    return settings, Database(settings.db_url), photos


def count_passes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Images through the tagger's network, per call."""
    calls: list[int] = []
    original = TaggerCaptioner.caption_and_looks

    def counted(self, images):
        calls.append(len(images))
        return original(self, images)

    monkeypatch.setattr(TaggerCaptioner, "caption_and_looks", counted)
    return calls


def test_the_network_runs_once_per_photo_and_stored_photos_catch_up(
        small_library: tuple[Settings, Database, Path], embedder,
        monkeypatch: pytest.MonkeyPatch) -> None:
    settings, db, photos = small_library
    calls = count_passes(monkeypatch)
    Indexer(settings, db, embedder=embedder).run([photos])
    assert sum(calls) == 5  # 5 photos, one pass each: the caption stage stored their looks
    assert_looks_consistent(db, settings.data_dir)
    with db.read() as session:
        captions_before = session.execute(select(Caption.id, Caption.text)).all()
    with db.session() as session:  # as a library indexed before looks were kept
        session.execute(delete(PhotoLooks))
    ids = ids_by_name(db)
    engine = SearchEngine(settings, db, embedder)
    assert engine.similar(ids["copy.jpg"], k=2).by == "caption"  # the fallback

    calls.clear()
    summary = Indexer(settings, db, embedder=embedder).run([photos])
    assert sum(calls) == 5 and summary.recaptioned == 0 and summary.new == 0
    with db.read() as session:
        assert session.execute(select(Caption.id, Caption.text)).all() == captions_before
        assert session.scalar(select(func.count(PhotoLooks.id))) == 5
    assert_looks_consistent(db, settings.data_dir)
    found = engine.similar(ids["copy.jpg"], k=2)
    assert found.by == "looks" and found.results[0].id == ids["astronaut-eileen-collins.png"]

    calls.clear()
    Indexer(settings, db, embedder=embedder).run([photos])
    assert calls == []  # nothing pending: nothing read again


def test_photos_of_other_captioners_fall_back_to_caption_vectors(
        small_library: tuple[Settings, Database, Path], embedder,
        colour_captioner) -> None:
    settings, db, photos = small_library
    settings = settings.model_copy(update={"captioner": "test-colour"})
    Indexer(settings, db, embedder=embedder).run([photos])
    with db.read() as session:
        assert session.scalar(select(func.count(PhotoLooks.id))) == 0
    found = SearchEngine(settings, db, embedder).similar(ids_by_name(db)["copy.jpg"], k=3)
    assert found.by == "caption" and len(found.results) == 3
    assert all(set(h.match) == {"caption"} for h in found.results)
