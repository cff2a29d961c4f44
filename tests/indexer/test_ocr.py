"""The OCR stage in index runs: skimage's page of text and the cat, with the real RapidOCR."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from sqlalchemy import func, select

from capdex.embedder import Embedder
from capdex.settings import Settings
from capdex.captioners.ocr import OcrEngine, OcrResult, shared_engine
from capdex.indexer.embed import embedding_text, photos_needing_vectors
from capdex.indexer.pipeline import Indexer, IndexerError
from capdex.search.engine import SearchEngine
from capdex.store.db import Database
from capdex.store.models import OcrText, Photo, Vector
from tests.conftest import ColourCaptioner

PHRASE = "markers of the coins"


class CountingOcr(OcrEngine):
    """The real engine under another version and/or with a text of our choosing; counts reads
    (every photo: its gate is inside `read`)."""

    name = "rapidocr"
    gate_side = None  # reads every photo, as its counts expect

    def __init__(self, version: str, text_for_page: str | None = None) -> None:
        super().__init__()
        self._version, self._text_for_page, self.reads = version, text_for_page, 0

    @property
    def version(self) -> str:
        return self._version

    def load(self) -> None:
        if self._text_for_page is None:
            shared_engine(0.6).load()

    def read(self, image, found=None) -> OcrResult:
        self.reads += 1
        if self._text_for_page is not None:  # the page is the wide one
            return OcrResult(self._text_for_page if image.width == 384 else "", 0.9)
        real = shared_engine(0.6)  # read as the default (gated) engine reads: same text
        lines = real.find_text(image)
        return real.read(image, lines) if lines is not None else OcrResult("", None)


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    import skimage

    folder = Path(skimage.__file__).parent / "data"
    root = tmp_path / "photos"
    root.mkdir()
    shutil.copy(folder / "page.png", root / "page.png")
    shutil.copy(folder / "chelsea.png", root / "cat.png")
    return root


@pytest.fixture
def db(settings: Settings) -> Database:
    return Database(settings.db_url)


@pytest.fixture
def index(settings: Settings, db: Database, embedder: Embedder, colour_captioner, photos: Path):
    def _index(**kwargs):
        return Indexer(settings, db, embedder=embedder, **kwargs).run([photos])

    return _index


def ocr_rows(db: Database) -> dict[str, OcrText]:
    with db.read() as session:
        rows = session.execute(select(OcrText, Photo).join(Photo)).all()
        return {("page" if photo.width == 384 else "cat"): row for row, photo in rows}


def top(settings: Settings, db: Database, embedder: Embedder, query: str, mode: str = "hybrid") -> str:
    results = SearchEngine(settings, db, embedder).search(query, k=1, mode=mode).results
    return Path(results[0].path).name if results else ""


@pytest.mark.slow
def test_the_page_text_is_stored_embedded_and_found_first(index, settings, db, embedder) -> None:
    summary = index()
    assert (summary.new, summary.ocr_read, summary.ocr_with_text) == (2, 2, 1)
    rows = ocr_rows(db)
    assert PHRASE in rows["page"].text and rows["page"].confidence > 0.8
    assert rows["page"].engine == "rapidocr" and rows["page"].engine_version == shared_engine(0.6).version
    assert rows["cat"].text == "" and rows["cat"].confidence is None
    with db.read() as session:
        vectors = {v.photo_id: v for v in session.scalars(select(Vector))}
    assert len(vectors) == 2  # still one vector per photo
    assert vectors[rows["page"].photo_id].ocr_id == rows["page"].id
    assert vectors[rows["cat"].photo_id].ocr_id is None
    # Both photos get a colour caption ("a plain white/... picture"): only the text tells them apart.
    for mode in ("keyword", "hybrid", "semantic"):
        assert top(settings, db, embedder, PHRASE, mode) == "page.png", mode
        assert top(settings, db, embedder, "region-based segmentation", mode) == "page.png", mode
    # OCR read "greyvalues" as one word: only meaning finds "grey values".
    assert top(settings, db, embedder, "histogram of grey values", "hybrid") == "page.png"
    hit = SearchEngine(settings, db, embedder).search(PHRASE, k=1).results[0]
    assert PHRASE in (hit.ocr_snippet or "") and "ocr" in hit.match["keyword"]["fields"]
    assert index().ocr_read == 0  # current OCR is not redone


def test_ocr_off_stores_no_text(index, settings, db, embedder, photos) -> None:
    assert index(ocr=False).ocr_read == 0
    assert ocr_rows(db) == {}
    off = Settings(data_dir=settings.data_dir, captioner="test-colour", ocr=False)
    assert Indexer(off, db, embedder=embedder).ocr is None
    assert Indexer(settings, db, embedder=embedder).ocr is not None  # on by default


def test_no_ocr_on_the_command_line(settings, colour_captioner, photos, embedder) -> None:
    from typer.testing import CliRunner

    from capdex.api.cli import app

    result = CliRunner().invoke(app, ["index", str(photos), "--data-dir", str(settings.data_dir),
                                      "--captioner", "test-colour", "--no-ocr", "--json"])
    assert result.exit_code == 0, result.output
    assert '"ocr_read": 0' in result.output
    assert ocr_rows(Database(settings.db_url)) == {}


@pytest.mark.slow
def test_a_new_engine_version_redoes_ocr_only(index, settings, db, embedder) -> None:
    index()
    captioned = ColourCaptioner.captioned()
    with db.read() as session:
        before = set(session.scalars(select(Vector.id)))
    newer = CountingOcr("99.0 test")
    summary = index(ocr_engine=newer)
    assert newer.reads == 2 and summary.ocr_read == 2
    assert ColourCaptioner.captioned() == captioned  # never captioned again
    assert {r.engine_version for r in ocr_rows(db).values()} == {"99.0 test"}
    with db.read() as session:  # same text: the vectors stay
        assert set(session.scalars(select(Vector.id))) == before
    again = CountingOcr("99.0 test")
    index(ocr_engine=again)
    assert again.reads == 0


def test_changed_text_is_embedded_again_and_searchable(index, settings, db, embedder) -> None:
    index(ocr_engine=CountingOcr("1", "Grand opening sale at the bakery"))
    assert top(settings, db, embedder, "bakery sale") == "page.png"
    captioned = ColourCaptioner.captioned()
    summary = index(ocr_engine=CountingOcr("2", "Quarterly tax invoice from the plumber"))
    assert ColourCaptioner.captioned() == captioned
    assert summary.reembedded == 1  # the page's vector now holds the new text
    assert top(settings, db, embedder, "plumber invoice") == "page.png"
    with db.read() as session:
        assert session.scalar(select(func.count(Vector.id))) == 2


def test_recaptioning_keeps_the_text_in_the_vector(index, settings, db, embedder) -> None:
    engine = CountingOcr("1", "Grand opening sale at the bakery")
    index(ocr_engine=engine)
    page_id = ocr_rows(db)["page"].photo_id
    Indexer(settings, db, embedder=embedder, ocr_engine=engine).recaption_photos([page_id])
    with db.read() as session:
        vector = session.scalar(select(Vector).where(Vector.photo_id == page_id))
    assert vector is not None and vector.ocr_id == ocr_rows(db)["page"].id
    assert top(settings, db, embedder, "bakery sale") == "page.png"


def test_a_missing_engine_stops_the_run_before_it_changes_anything(index, db, monkeypatch) -> None:
    from importlib import metadata

    real = metadata.version
    monkeypatch.setattr(metadata, "version", lambda name: (_ for _ in ()).throw(
        metadata.PackageNotFoundError(name)) if name == "rapidocr-onnxruntime" else real(name))
    with pytest.raises(IndexerError, match="rapidocr-onnxruntime"):
        index()
    with db.read() as session:
        assert session.scalar(select(func.count(Photo.id))) == 0


def test_embedding_text_adds_the_first_words_shown() -> None:
    assert embedding_text("a cat", "", 40) == "a cat"
    assert embedding_text("a page", "one two\nthree four", 3) == "a page Text: one two three"


def test_a_persons_caption_is_embedded_with_the_text_shown(index, settings, db, embedder) -> None:
    from capdex.indexer.human import clear_human_caption, set_human_caption

    index(ocr_engine=CountingOcr("1", "Grand opening sale at the bakery"))
    page = ocr_rows(db)["page"]
    for change in (set_human_caption(db, embedder, page.photo_id, "my favourite shop"),
                   clear_human_caption(db, embedder, page.photo_id)):
        assert len(change.added) == 1
        with db.read() as session:
            assert session.scalar(select(Vector.ocr_id).where(Vector.photo_id == page.photo_id)) == page.id
    assert photos_needing_vectors(db, embedder.name) == []  # nothing for the next run to redo
