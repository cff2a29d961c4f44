"""The OCR stage of an index run: read the text of photos whose OCR is missing or stale.

A photo's OCR is stale when no row of the current engine name + version exists, so a new engine
version redoes OCR on the next run — never captioning. OCR decodes on its own, at up to
`ocr_max_side` pixels: the caption decode is sized for the captioner (224–384 px), where text is
unreadable, and a decode (tens of ms) is small beside OCR itself (0.2–3 s).

Embedding choice (issue 10): a photo's OCR text is embedded *with* its caption in one vector
("<caption> Text: <first N words>"), not as a second vector per photo. Measured with
`benchmarks/ocr.py` (26 photos, 16 queries about text photos show, 8 about what photos show):
caption only finds 1 of 16 text queries first (MRR 0.19); one combined vector and two vectors
(a photo scoring the better of caption and text) both find 16 of 16 (MRR 1.00), and neither
moves the picture queries (R@1 0.75, MRR 0.83 for all three). As good, one vector wins on
simplicity: "one vector per photo" keeps FAISS ids, counts, ranking and the index checks as
they are. The vector row records the OCR row it embedded (`vectors.ocr_id`); when OCR text
changes, the photo's vectors are dropped and `Indexer._embed_missing` embeds caption + text.
"""

from __future__ import annotations

import itertools
import logging
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from sqlalchemy import and_, delete, select

from capdex.images import decode_image
from capdex.paths import to_fs
from capdex.settings import Settings
from capdex.captioners.ocr import OcrEngine, OcrResult, shared_engine
from capdex.store import repo
from capdex.store.db import Database
from capdex.store.models import File, OcrText, Vector, utcnow

log = logging.getLogger(__name__)

#: Photos decoded ahead and committed together.
_CHUNK = 8


def embedding_text(caption: str, ocr_text: str | None, max_words: int, words: str = "") -> str:
    """What a photo's vector embeds: its caption, the embedded words stages added ("two
    people"; `capdex.store.words`), then the first `max_words` words it shows."""
    head = f"{caption}, {words}" if words else caption
    shown = (ocr_text or "").split()[:max_words]
    return f"{head} Text: {' '.join(shown)}" if shown else head


def ocr_for_embedding(session, photo_ids: list[int]) -> dict[int, tuple[int, str]]:  # type: ignore[no-untyped-def]
    """{photo id: (ocr row id, text)} of the photos among `photo_ids` that show text."""
    rows = session.execute(select(OcrText.photo_id, OcrText.id, OcrText.text).where(
        OcrText.photo_id.in_(photo_ids), OcrText.text != "")).all()
    return {photo_id: (ocr_id, text) for photo_id, ocr_id, text in rows}


def drop_stale_vectors(db: Database) -> list[int]:
    """Delete vectors that do not embed their photo's current OCR text; returns their ids.

    A vector made from the caption alone (a new photo, a new caption) of a photo that shows
    text is stale, and so is one that embedded an older OCR row. It runs on every index run, so
    it reads only the photos that show text and the vectors that embedded some text (through
    `ix_vectors_ocr_id`), never the whole vectors table.
    """
    with db.session() as session:
        shown = dict(session.execute(
            select(OcrText.photo_id, OcrText.id).where(OcrText.text != "")).all())
        stale: list[int] = []
        photo_ids = list(shown)
        for start in range(0, len(photo_ids), 500):
            rows = session.execute(select(Vector.id, Vector.photo_id, Vector.ocr_id).where(
                Vector.photo_id.in_(photo_ids[start : start + 500])))
            stale += [vector_id for vector_id, photo_id, ocr_id in rows
                      if ocr_id != shown[photo_id]]
        stale += session.scalars(  # embedded text the photo no longer shows
            select(Vector.id).join(OcrText, OcrText.id == Vector.ocr_id)
            .where(OcrText.text == "")).all()
        if stale:
            session.execute(delete(Vector).where(Vector.id.in_(stale)))
    return stale


@dataclass
class OcrReport:
    read: int = 0
    with_text: int = 0
    failed: int = 0
    seconds: float = 0.0


class OcrStage:
    """Runs `engine` over the present photos whose OCR is missing or from another engine version."""

    def __init__(self, settings: Settings, db: Database, engine: OcrEngine | None = None) -> None:
        self.settings = settings
        self.db = db
        self.engine = engine or shared_engine(settings.ocr_min_confidence)

    def stale_photos(self) -> list[int]:
        """Ids of photos with a file present and no OCR row of this engine name and version."""
        with self.db.read() as session:
            current = select(OcrText.photo_id).where(and_(
                OcrText.engine == self.engine.name, OcrText.engine_version == self.engine.version))
            return list(session.scalars(
                select(File.photo_id).distinct().where(File.photo_id.not_in(current))
                .order_by(File.photo_id)))

    def run(self, stop: threading.Event, progress: Callable[[str, int, int], None],
            forget_vectors: Callable[[list[int]], None]) -> OcrReport:
        """OCR every stale photo, committing every few; `forget_vectors` gets the ids of
        vectors dropped because a photo's text changed (to leave the FAISS index)."""
        report = OcrReport()
        photo_ids = self.stale_photos()
        if not photo_ids:
            return report
        started = time.monotonic()
        self.engine.load()
        progress("ocr", 0, len(photo_ids))
        chunks = iter([photo_ids[i : i + _CHUNK] for i in range(0, len(photo_ids), _CHUNK)])
        with ThreadPoolExecutor(self.settings.decode_threads) as pool:
            # The next chunk decodes while this one is read; no more is held in memory.
            pending = [pool.submit(self._decode_chunk, c) for c in itertools.islice(chunks, 2)]
            while pending:
                images = pending.pop(0).result()
                following = next(chunks, None)
                if following is not None:
                    pending.append(pool.submit(self._decode_chunk, following))
                if stop.is_set():
                    break
                results: dict[int, OcrResult] = {}
                for photo_id, image in images:
                    if image is None:
                        report.failed += 1
                        continue
                    try:
                        results[photo_id] = self.engine.read(image)
                    except Exception as exc:  # noqa: BLE001 - one odd image must not stop a run
                        log.warning("OCR failed on photo %d: %s", photo_id, exc)
                        report.failed += 1
                forget_vectors(self._store(results))
                report.read += len(results)
                report.with_text += sum(1 for r in results.values() if r.text)
                progress("ocr", report.read + report.failed, len(photo_ids))
        report.seconds = time.monotonic() - started
        return report

    def _decode_chunk(self, photo_ids: list[int]) -> list[tuple[int, object]]:
        with self.db.read() as session:
            rows = session.execute(select(File.photo_id, File.path).where(
                File.photo_id.in_(photo_ids)).order_by(File.id)).all()
        paths: dict[int, list[str]] = {}
        for photo_id, path in rows:
            paths.setdefault(photo_id, []).append(path)
        return [(pid, self._decode(paths.get(pid, []))) for pid in photo_ids]

    def _decode(self, paths: list[str]):  # type: ignore[no-untyped-def]
        """The photo upright, at most `ocr_max_side` a side, from the first readable file."""
        side = self.settings.ocr_max_side
        for path in paths:
            if not os.path.isfile(to_fs(path)):
                continue
            try:
                # only the long side matters: a 12-MP 4:3 photo decodes at half scale
                image = decode_image(to_fs(path), max_pixels=self.settings.max_image_pixels,
                                     size_hint=(1, side)).image
            except Exception as exc:  # noqa: BLE001 - recorded by the caption stage already
                log.warning("%s: cannot decode for OCR: %s", path, exc)
                continue
            if max(image.size) > side:
                image = image.copy()
                image.thumbnail((side, side))
            return image
        return None

    def _store(self, results: dict[int, OcrResult]) -> list[int]:
        """Replace the OCR rows of these photos; drop vectors whose embedded text changed."""
        dropped: list[int] = []
        if not results:
            return dropped
        with self.db.session() as session:
            old = {row.photo_id: row for row in session.scalars(
                select(OcrText).where(OcrText.photo_id.in_(list(results))))}
            for photo_id, result in results.items():
                row = old.get(photo_id)
                if (row.text if row else "") != result.text:
                    dropped += repo.delete_vectors_of(session, [photo_id])
                if row is None:
                    row = OcrText(photo_id=photo_id)
                    session.add(row)
                # Updated in place: a vector that embedded the same text stays valid.
                row.text, row.confidence = result.text, result.confidence
                row.engine, row.engine_version = self.engine.name, self.engine.version
                row.created_at = utcnow()
        return dropped
