"""OCR runs beside captioning (issue 17): no photo waits on OCR to become searchable by its
caption, and a photo the text gate turns away is never read in full."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from PIL import Image
from sqlalchemy import select

from capdex.captioners.ocr import OcrEngine, OcrResult, TextBoxes
from capdex.embedder import Embedder
from capdex.indexer.pipeline import Indexer
from capdex.search.engine import SearchEngine
from capdex.settings import Settings
from capdex.store.db import Database
from capdex.store.models import OcrText, Vector
from tests.conftest import line_across, write_colour_photo


class HeldOcr(OcrEngine):
    """OCR that cannot finish until `release` is set; its gate passes only the red photos."""

    name = "rapidocr"

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()
        self.gated: list[tuple[int, int]] = []
        self.reads = 0

    @property
    def version(self) -> str:
        return "held-test"

    def check_installed(self) -> None:
        pass

    def load(self) -> None:
        pass

    def find_text(self, image: Image.Image) -> TextBoxes | None:
        self.gated.append(image.size)
        assert self.release.wait(300), "the run waited for OCR before committing captions"
        red, green, blue = image.convert("RGB").resize((1, 1)).getpixel((0, 0))
        return line_across(image) if red > 2 * green and red > 2 * blue else None

    def read(self, image, found: TextBoxes | None = None) -> OcrResult:
        self.reads += 1
        return OcrResult("Grand opening sale at the bakery", 0.9)


def test_photos_are_searchable_by_caption_while_ocr_is_still_running(
        tmp_path: Path, settings: Settings, embedder: Embedder, colour_captioner) -> None:
    photos = tmp_path / "photos"
    for i in range(6):
        write_colour_photo(photos / f"p{i}.jpg", ["red", "green", "blue"][i % 3], seed=i)
    db = Database(settings.db_url)
    engine = HeldOcr()
    indexer = Indexer(Settings(data_dir=settings.data_dir, captioner="test-colour", batch_size=2),
                      db, embedder=embedder, ocr_engine=engine)
    done: list[object] = []
    run = threading.Thread(target=lambda: done.append(indexer.run([photos])))
    run.start()
    try:
        search = SearchEngine(settings, db, embedder)
        embedded, deadline = 0, time.monotonic() + 240  # a loaded machine loads MiniLM slowly
        while embedded < 6 and time.monotonic() < deadline and run.is_alive():
            run.join(0.05)  # wait for every caption committed and embedded, OCR still held
            with db.read() as session:
                embedded = len(session.scalars(select(Vector.photo_id)).all())
        assert embedded == 6 and engine.gated  # OCR has started, and is held
        hits = search.search("a plain green picture", k=6, mode="semantic").results
        assert hits and hits[0].path.endswith(("p1.jpg", "p4.jpg"))
        with db.read() as session:
            assert session.scalars(select(OcrText)).all() == []  # OCR has written nothing yet
    finally:
        engine.release.set()
        run.join(300)
    summary = done[0]
    assert summary.ocr_read == 6 and summary.ocr_with_text == 2
    assert engine.reads == 2  # the gate turned the other four away
    assert search.search("bakery", k=1, mode="keyword").results[0].path.endswith(("p0.jpg",
                                                                                   "p3.jpg"))
