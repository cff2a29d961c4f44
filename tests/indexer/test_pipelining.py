"""The write path keeps the model busy: decoding runs ahead of captioning and the database
commit of one batch runs while the next batch is captioned. Checked by the order of events
(intervals recorded by slow fakes), not by timing thresholds."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from capdex.embedder import Embedder
from capdex.settings import Settings
from capdex.indexer import decode
from capdex.indexer.flow import Flow
from capdex.indexer.pipeline import Indexer
from capdex.store.db import Database
from capdex.store.models import Caption, File, IndexingError, Photo, Vector
from tests.conftest import ColourCaptioner, write_colour_photo

COLOURS = ["red", "green", "blue", "yellow", "black", "white"]


class Recorder:
    """(what, start, end, thread) of every slow step, from any thread."""

    def __init__(self) -> None:
        self.events: list[tuple[str, float, float]] = []
        self.lock = threading.Lock()

    def timed(self, what: str, seconds: float, fn):
        start = time.monotonic()
        time.sleep(seconds)
        result = fn()
        with self.lock:
            self.events.append((what, start, time.monotonic()))
        return result

    def of(self, what: str) -> list[tuple[float, float]]:
        return sorted((s, e) for w, s, e in self.events if w == what)


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    root = tmp_path / "photos"
    for i in range(16):  # four batches of four
        write_colour_photo(root / f"p{i:02d}.jpg", COLOURS[i % len(COLOURS)], seed=i)
    return root


def test_decoding_and_committing_overlap_captioning(photos, tmp_path, monkeypatch, colour_captioner, embedder: Embedder):
    settings = Settings(data_dir=tmp_path / "data", captioner="test-colour", decode_threads=2,
                        ocr=False)  # OCR overlaps captioning too: tests/indexer/test_write_path.py
    db = Database(settings.db_url)
    embedder.warm_up()  # steady state; a loading embedder only delays the writer thread
    rec = Recorder()
    real_decode = decode.decode_image
    monkeypatch.setattr(decode, "decode_image",
                        lambda *a, **k: rec.timed("decode", 0.05, lambda: real_decode(*a, **k)))
    real_caption = ColourCaptioner.caption_batch
    monkeypatch.setattr(ColourCaptioner, "caption_batch",
                        lambda self, images: rec.timed("caption", 0.3,
                                                       lambda: real_caption(self, images)))
    real_commit = Flow.commit_batch
    monkeypatch.setattr(Flow, "commit_batch",
                        lambda self, *a: rec.timed("commit", 0.2, lambda: real_commit(self, *a)))

    summary = Indexer(settings, db, embedder=embedder).run([photos])

    assert summary.new == 16 and summary.failed == 0
    captions, commits, decodes = rec.of("caption"), rec.of("commit"), rec.of("decode")
    assert len(captions) == len(commits) == 4 and len(decodes) == 16
    # While batch 1 is captioned, batch 2's images are already being decoded ...
    assert any(captions[0][0] < start < captions[0][1] for start, _ in decodes[4:])
    # ... and while batch k+1 is captioned, batch k is being committed.
    for (c_start, c_end), (w_start, w_end) in zip(captions[1:], commits, strict=False):
        assert w_start < c_end and c_start < w_end
    # The next batch's captioning never waits for the previous commit to end.
    assert captions[1][0] < commits[0][1]


def test_batched_writes_leave_the_same_rows_as_before(photos, tmp_path, colour_captioner, embedder: Embedder):
    settings = Settings(data_dir=tmp_path / "data", captioner="test-colour", batch_size=5)
    db = Database(settings.db_url)
    (photos / "broken.jpg").write_bytes(b"not a jpeg")
    (photos / "copy.jpg").write_bytes((photos / "p00.jpg").read_bytes())
    summary = Indexer(settings, db, embedder=embedder).run([photos])
    assert (summary.new, summary.failed, summary.captioned) == (16, 1, 16)
    with db.read() as session:
        def count(model: type) -> int | None:
            return session.scalar(select(func.count()).select_from(model))
        assert (count(Photo), count(File), count(Caption), count(Vector)) == (16, 17, 16, 16)
        assert count(IndexingError) == 1
        pairs = session.execute(select(Vector.photo_id, Vector.caption_id, Caption.photo_id)
                                .join(Caption, Caption.id == Vector.caption_id)).all()
        assert all(v_photo == c_photo for v_photo, _, c_photo in pairs)
    # Fixing the broken file clears its error in the next run's batch.
    write_colour_photo(photos / "broken.jpg", "red", seed=99)
    again = Indexer(settings, db, embedder=embedder).run([photos])
    assert again.new == 1 and again.failed == 0
    with db.read() as session:
        assert session.scalar(select(func.count()).select_from(IndexingError)) == 0


def test_prepare_runs_in_the_decode_threads_and_a_failure_fails_only_its_photo(photos, tmp_path, monkeypatch, colour_captioner, embedder: Embedder):
    settings = Settings(data_dir=tmp_path / "data", captioner="test-colour", decode_threads=2,
                        ocr=False)  # OCR overlaps captioning too: tests/indexer/test_write_path.py
    db = Database(settings.db_url)
    prepared_in: set[str] = set()
    captioned: list[object] = []

    def prepare(self, image):
        prepared_in.add(threading.current_thread().name)
        if image.getpixel((0, 0)) == (0, 0, 0):
            raise ValueError("cannot crop this one")
        return ("prepared", image.convert("RGB").resize((8, 8)))

    def caption_batch(self, images):
        captioned.extend(images)
        return real_caption(self, [image for _, image in images])

    real_caption = ColourCaptioner.caption_batch
    monkeypatch.setattr(ColourCaptioner, "prepare", prepare, raising=False)
    monkeypatch.setattr(ColourCaptioner, "caption_batch", caption_batch)
    from PIL import Image
    Image.new("RGB", (40, 30), (0, 0, 0)).save(photos / "odd.png")

    summary = Indexer(settings, db, embedder=embedder).run([photos])

    assert (summary.new, summary.captioned, summary.failed) == (16, 16, 1)
    assert dict(summary.failures)[str(photos / "odd.png")] == \
        "could not prepare image (ValueError: cannot crop this one)"
    assert len(captioned) == 16 and all(kind == "prepared" for kind, _ in captioned)
    assert threading.main_thread().name not in prepared_in


def test_captioning_does_not_wait_for_a_slow_embedder(photos, tmp_path, monkeypatch, colour_captioner, embedder: Embedder):
    """Embedding runs in the writer thread: a loading (slow) embedder holds back the commits,
    not the model, which captions the following batches meanwhile."""
    settings = Settings(data_dir=tmp_path / "data", captioner="test-colour", decode_threads=2,
                        ocr=False)  # OCR overlaps captioning too: tests/indexer/test_write_path.py
    db = Database(settings.db_url)
    rec = Recorder()
    real_embed = embedder.embed
    first = threading.Event()

    def slow_first_embed(texts):
        seconds = 0.0 if first.is_set() else 1.0
        first.set()
        return rec.timed("embed", seconds, lambda: real_embed(texts))

    monkeypatch.setattr(embedder, "embed", slow_first_embed)
    real_caption = ColourCaptioner.caption_batch
    monkeypatch.setattr(ColourCaptioner, "caption_batch",
                        lambda self, images: rec.timed("caption", 0.05,
                                                       lambda: real_caption(self, images)))
    summary = Indexer(settings, db, embedder=embedder).run([photos])
    assert summary.new == 16 and summary.captioned == 16
    captions, embeds = rec.of("caption"), rec.of("embed")
    assert len(captions) == 4 and captions[-1][1] < embeds[0][1]
    with db.read() as session:
        assert session.scalar(select(func.count()).select_from(Vector)) == 16
