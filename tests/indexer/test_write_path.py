"""The write path's promises (issue 18, issue 20 point 3 and its cancelled-run note): a photo is
read once, decoded once and embedded once; a caption always describes the bytes its hash names;
a run stopped during OCR leaves every committed photo searchable."""

from __future__ import annotations

import hashlib
import os
import threading
from collections import Counter
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import event, func, select

from capdex.captioners.ocr import OcrEngine, OcrResult, TextBoxes
from capdex.embedder import Embedder
from capdex.indexer import decode
from capdex.indexer.pipeline import Indexer
from capdex.indexer.stage import Stage
from capdex.samples import SAMPLES, write_samples
from capdex.search.engine import SearchEngine
from capdex.settings import Settings
from capdex.store.db import Database
from capdex.store.models import Caption, File, OcrText, Photo, PhotoWords, Vector
from capdex.store.words import set_words
from tests.conftest import ColourCaptioner, line_across, write_colour_photo


@pytest.fixture
def db(settings: Settings) -> Database:
    return Database(settings.db_url)


class Counting:
    """Counts calls of a wrapped function by the path (first argument) they were made for."""

    def __init__(self, real) -> None:
        self.real, self.calls, self.lock = real, Counter(), threading.Lock()

    def __call__(self, path, *args, **kwargs):
        with self.lock:
            self.calls[Path(path).name] += 1
        return self.real(path, *args, **kwargs)


def vector_inserts(monkeypatch: pytest.MonkeyPatch) -> Counter[int]:
    """Vector rows inserted, by photo id, from now on."""
    inserted: Counter[int] = Counter()

    def count(mapper, connection, target) -> None:
        inserted[target.photo_id] += 1

    event.listen(Vector, "after_insert", count)
    monkeypatch.setattr(Vector, "_capdex_test_listener", count, raising=False)
    return inserted


@pytest.fixture
def inserts(monkeypatch: pytest.MonkeyPatch):
    counts = vector_inserts(monkeypatch)
    yield counts
    event.remove(Vector, "after_insert", Vector._capdex_test_listener)


def ocr_in_time(monkeypatch: pytest.MonkeyPatch, captioner: type[ColourCaptioner]) -> None:
    """Captioning waits until OCR has read the photos it captions, so OCR is never late for
    their commit: a busy machine (OCR runs in its own worker, and a photo never waits for it)
    would otherwise commit a caption first and embed the photo again when its text arrives."""
    from capdex.indexer.stages.ocr import OcrStage

    done = threading.Condition()
    counts = {"read": 0, "captioned": 0}
    real_run, real_caption = OcrStage.run, captioner.caption_batch

    def run(self, inputs):
        results = real_run(self, inputs)
        with done:
            counts["read"] += len(inputs)
            done.notify_all()
        return results

    def caption_batch(self, images):
        with done:
            counts["captioned"] += len(images)
            assert done.wait_for(lambda: counts["read"] >= counts["captioned"], timeout=300)
        return real_caption(self, images)

    monkeypatch.setattr(OcrStage, "run", run)
    monkeypatch.setattr(captioner, "caption_batch", caption_batch)


@pytest.mark.slow
def test_each_photo_is_decoded_once_and_embedded_once_with_ocr_on(
        tmp_path, settings, db, embedder: Embedder, colour_captioner, monkeypatch, inserts) -> None:
    """The sample photos with the real OCR engine: one decode and one embedding per photo
    (before: a second decode for OCR, and the vector of every photo showing text dropped and
    embedded again). Unchanged photos are then neither decoded nor embedded again."""
    photos = tmp_path / "samples"
    write_samples(photos)
    decodes = Counting(decode.decode_image)
    monkeypatch.setattr(decode, "decode_image", decodes)
    embedded: list[str] = []
    real_embed = embedder.embed
    monkeypatch.setattr(embedder, "embed", lambda texts: (embedded.extend(texts),
                                                          real_embed(texts))[1])
    ocr_in_time(monkeypatch, colour_captioner)

    summary = Indexer(settings, db, embedder=embedder).run([photos])

    assert summary.new == len(SAMPLES) and summary.failed == 0
    assert summary.ocr_read == len(SAMPLES) and summary.ocr_with_text >= 1
    assert set(decodes.calls.values()) == {1} and len(decodes.calls) == len(SAMPLES)
    assert len(embedded) == len(SAMPLES)
    with db.read() as session:
        photo_ids = set(session.scalars(select(Photo.id)))
        shown = session.scalar(select(func.count()).select_from(Vector).where(
            Vector.ocr_id.is_not(None)))
    assert dict(inserts) == dict.fromkeys(photo_ids, 1)
    assert shown == summary.ocr_with_text  # the text is in the one vector
    assert any("Text:" in text for text in embedded)

    again = Indexer(settings, db, embedder=embedder).run([photos])
    assert again.unchanged == len(SAMPLES) and not again.did_something
    assert set(decodes.calls.values()) == {1} and len(embedded) == len(SAMPLES)


class GatedOcr(OcrEngine):
    """An OCR engine with a text gate: it looks at a small view first, reads only where the
    gate says there is text (the widest photo, 'page'), at full size."""

    name = "rapidocr"
    gate_side = 128

    def __init__(self) -> None:
        super().__init__()
        self.gated: list[tuple[int, int]] = []
        self.read_sizes: list[tuple[int, int]] = []

    @property
    def version(self) -> str:
        return "gated-test"

    def check_installed(self) -> None:
        pass

    def load(self) -> None:
        pass

    def find_text(self, image: Image.Image) -> TextBoxes | None:
        self.gated.append(image.size)
        return line_across(image) if image.width > 2 * image.height else None

    def read(self, image, found: TextBoxes | None = None) -> OcrResult:
        self.read_sizes.append(image.size)
        return OcrResult("Grand opening sale at the bakery", 0.9)


def test_a_stage_that_needs_more_pixels_for_some_photos_decodes_them_again_itself(
        tmp_path, settings, db, embedder: Embedder, colour_captioner, monkeypatch) -> None:
    """With a text gate, the shared decode is at the gate's (small) size; only the photo the gate
    passes is decoded again, larger, from the same bytes, in the OCR worker."""
    photos = tmp_path / "photos"
    write_colour_photo(photos / "page.jpg", "white", size=(1200, 400), seed=1)
    write_colour_photo(photos / "cat.jpg", "yellow", size=(600, 450), seed=2)
    write_colour_photo(photos / "sky.jpg", "blue", size=(600, 450), seed=3)
    decodes = Counting(decode.decode_image)
    monkeypatch.setattr(decode, "decode_image", decodes)
    from capdex.indexer import flow

    larger = Counting(flow.decode_image)
    monkeypatch.setattr(flow, "decode_image", larger)
    engine = GatedOcr()
    summary = Indexer(settings, db, embedder=embedder, ocr_engine=engine).run([photos])
    assert summary.new == 3 and summary.ocr_read == 3 and summary.ocr_with_text == 1
    assert dict(decodes.calls) == {"page.jpg": 1, "cat.jpg": 1, "sky.jpg": 1}
    assert dict(larger.calls) == {"page.jpg": 1}
    assert all(max(size) <= GatedOcr.gate_side for size in engine.gated)
    assert engine.read_sizes == [(1200, 400)]  # the full photo (under ocr_max_side)
    assert SearchEngine(settings, db, embedder).search("bakery", k=1).results[0].path.endswith(
        "page.jpg")


class _Overwriting:
    """hashlib.sha256 that, the first time it returns the digest of `before`, overwrites `path`
    with `after`: the file changes right after it was hashed, before it is decoded."""

    def __init__(self, path: Path, before: bytes, after: bytes) -> None:
        self.path, self.target, self.after = path, hashlib.sha256(before).hexdigest(), after
        self.real, self.done = hashlib.sha256, False

    def __call__(self, data: bytes = b"", **kwargs):
        return _Digest(self, self.real(data, **kwargs))


class _Digest:
    def __init__(self, owner: _Overwriting, real) -> None:
        self.owner, self.real = owner, real

    def update(self, data: bytes) -> None:
        self.real.update(data)

    def digest(self) -> bytes:
        return self.real.digest()

    def hexdigest(self) -> str:
        value = self.real.hexdigest()
        owner = self.owner
        if value == owner.target and not owner.done:
            owner.done = True
            stamp = owner.path.stat().st_mtime_ns
            owner.path.write_bytes(owner.after)
            os.utime(owner.path, ns=(stamp + 10**9, stamp + 10**9))
        return value


def test_a_file_overwritten_after_it_was_hashed_keeps_the_caption_of_the_bytes_hashed(
        tmp_path, settings, db, embedder: Embedder, colour_captioner, monkeypatch) -> None:
    """Issue 20, point 3: the photo got the first bytes' hash and the second bytes' caption and
    size, kept forever, and later copies of the first bytes inherited the wrong caption."""
    photos = tmp_path / "photos"
    red = write_colour_photo(photos / "photo.jpg", "red", seed=1)
    red_bytes = red.read_bytes()
    blue = write_colour_photo(tmp_path / "blue.jpg", "blue", size=(80, 60), seed=2)
    blue_bytes = blue.read_bytes()
    monkeypatch.setattr(hashlib, "sha256", _Overwriting(red, red_bytes, blue_bytes))

    Indexer(settings, db, embedder=embedder).run([photos])
    monkeypatch.undo()

    with db.read() as session:
        photo = session.scalar(select(Photo))
        caption = session.scalar(select(Caption.text).where(Caption.photo_id == photo.id))
    assert photo.content_hash == hashlib.sha256(red_bytes).hexdigest()
    assert caption == "a plain red picture" and photo.size == len(red_bytes)
    assert (photo.width, photo.height) == (64, 48)

    # A copy of the first bytes is a copy of that photo, with its (right) caption; the file
    # that changed is new content of its own.
    (photos / "copy.jpg").write_bytes(red_bytes)
    summary = Indexer(settings, db, embedder=embedder).run([photos])
    assert summary.copied == 1 and summary.changed == 1 and summary.new == 1
    with db.read() as session:
        rows = session.execute(select(File.path, Caption.text)
                               .join(Caption, Caption.photo_id == File.photo_id)).all()
    assert {Path(path).name: text for path, text in rows} == {
        "copy.jpg": "a plain red picture", "photo.jpg": "a plain blue picture"}


class SlowTextOcr(OcrEngine):
    """Every photo shows text; the run is asked to stop after `stop_after` reads."""

    name = "rapidocr"
    gate_side = None  # no gate: every photo is read

    def __init__(self, stop: threading.Event, stop_after: int) -> None:
        super().__init__()
        self.stop, self.stop_after, self.reads = stop, stop_after, 0

    @property
    def version(self) -> str:
        return "stop-test"

    def check_installed(self) -> None:
        pass

    def load(self) -> None:
        pass

    def read(self, image, found: TextBoxes | None = None) -> OcrResult:
        self.reads += 1
        if self.reads == self.stop_after:
            self.stop.set()  # Ctrl-C, SIGTERM or a cancelled job, during OCR
        return OcrResult(f"receipt number {self.reads} for coffee", 0.9)


def test_a_run_stopped_during_ocr_leaves_every_committed_photo_searchable(
        tmp_path, settings, db, embedder: Embedder, colour_captioner) -> None:
    """Issue 20: cancelling a job (or SIGTERM) during OCR left photos with text and no vector
    until the next run (`similar` answered 404 meanwhile)."""
    photos = tmp_path / "photos"
    for i in range(12):
        write_colour_photo(photos / f"p{i:02d}.jpg", ["red", "green", "blue"][i % 3], seed=i)
    plain = Settings(data_dir=settings.data_dir, captioner="test-colour", batch_size=4)
    stop = threading.Event()
    Indexer(plain, db, embedder=embedder, ocr=False).run([photos])  # captions, no OCR yet

    engine = SlowTextOcr(stop, stop_after=5)
    summary = Indexer(plain, db, embedder=embedder, ocr_engine=engine, stop=stop).run([photos])

    assert summary.interrupted and 0 < summary.ocr_read < 12
    search = SearchEngine(plain, db, embedder)
    with db.read() as session:
        committed = set(session.scalars(select(File.photo_id)))
        with_vector = set(session.scalars(select(Vector.photo_id)))
        read = set(session.scalars(select(OcrText.photo_id)))
    assert committed == with_vector
    for photo_id in committed:
        assert search.similar(photo_id, k=1) is not None  # no SimilarNotFound
    assert read and search.search("receipt for coffee", k=20, mode="semantic").results

    rest = Indexer(plain, db, embedder=embedder, ocr_engine=SlowTextOcr(threading.Event(), 0))
    assert rest.run([photos]).ocr_read == 12 - len(read)
    assert ColourCaptioner.captioned() == 12  # never captioned again


class PlaceStage(Stage):
    """A stage that needs no pixels (like reverse geocoding from EXIF GPS): embedded words."""

    name = "place-test"
    word_kinds = ("place",)

    @classmethod
    def create(cls, settings, options):
        return cls() if options.get("place") else None

    @property
    def version(self) -> str:
        return "1"

    def pending(self, session):
        done = select(PhotoWords.photo_id).where(PhotoWords.kind == "place",
                                                 PhotoWords.version == self.version)
        return list(session.scalars(select(File.photo_id).distinct()
                                    .where(File.photo_id.not_in(done)).order_by(File.photo_id)))

    def run(self, inputs):
        assert all(i.view is None and i.metadata is not None for i in inputs)
        return ["Lisbon Portugal" for _ in inputs]

    def write(self, session, photo_id, result, version) -> None:
        set_words(session, photo_id, "place", result, embedded=True, version=version)


def test_a_stage_added_to_a_library_runs_once_on_every_photo_without_decoding_for_no_pixels(
        colour_folder, settings, db, embedder: Embedder, colour_captioner, monkeypatch) -> None:
    """One file plus one line in STAGES: stored photos get it once, their vectors re-embedded
    with its words in the same commit (the index file follows), nothing decoded for it."""
    from capdex.indexer import pipeline
    from capdex.store import repo

    Indexer(settings, db, embedder=embedder, ocr=False).run([colour_folder])
    monkeypatch.setattr(pipeline, "STAGES", (*pipeline.STAGES, PlaceStage))
    decodes = Counting(decode.decode_image)
    monkeypatch.setattr(decode, "decode_image", decodes)

    summary = Indexer(settings, db, embedder=embedder, ocr=False, place=True).run([colour_folder])

    assert summary.unchanged == 6 and summary.reembedded == 6 and not decodes.calls
    assert ColourCaptioner.captioned() == 6  # the first run's, never again
    hits = SearchEngine(settings, db, embedder).search("Lisbon", k=10, mode="semantic")
    assert len(hits.results) == 6
    import faiss

    saved = faiss.read_index(str(settings.index_path))
    assert sorted(faiss.vector_to_array(saved.id_map).tolist()) == \
        repo.vector_ids(db, embedder.name).tolist()
    again = Indexer(settings, db, embedder=embedder, ocr=False, place=True).run([colour_folder])
    assert not again.did_something
