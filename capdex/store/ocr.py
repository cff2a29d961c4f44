"""The text photos show (OCR): one row per photo, recording the engine name and version that
read it, so a new engine version redoes OCR on the next run (never captioning)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from capdex.store.models import File, OcrText, utcnow


def set_text(session: Session, photo_id: int, text: str, confidence: float | None,
             engine: str, version: str) -> None:
    """Record what `engine` read in the photo ("" for no text).

    The row is updated in place, so a vector that embedded the same text stays valid (it
    records the row's id); the commit embeds the photo again when the text differs.
    """
    row = session.scalar(select(OcrText).where(OcrText.photo_id == photo_id))
    if row is None:
        row = OcrText(photo_id=photo_id)
        session.add(row)
    row.text, row.confidence = text, confidence
    row.engine, row.engine_version, row.created_at = engine, version, utcnow()
    session.flush()


def shown_texts(session: Session, photo_ids: list[int]) -> dict[int, tuple[int, str]]:
    """{photo id: (OCR row id, text)} of the photos among `photo_ids` that show text."""
    out: dict[int, tuple[int, str]] = {}
    for start in range(0, len(photo_ids), 500):
        rows = session.execute(select(OcrText.photo_id, OcrText.id, OcrText.text).where(
            OcrText.photo_id.in_(photo_ids[start : start + 500]), OcrText.text != ""))
        out.update({photo_id: (ocr_id, text) for photo_id, ocr_id, text in rows})
    return out


def stale_photos(session: Session, engine: str, version: str) -> list[int]:
    """Photos with a file and no OCR row of this engine name and version, in id order."""
    current = select(OcrText.photo_id).where(OcrText.engine == engine,
                                             OcrText.engine_version == version)
    return list(session.scalars(select(File.photo_id).distinct()
                                .where(File.photo_id.not_in(current)).order_by(File.photo_id)))
