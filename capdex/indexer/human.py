"""Captions people write: stored beside the machine caption, embedded at once, never overwritten.

Used by the API (`PUT /api/photos/{id}/caption`) and `capdex caption-set`. The vector changes in
the same transaction as the caption, so the database never holds a vector of a caption that no
longer speaks for its photo; the caller then updates its in-memory index and saves it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from sqlalchemy import select

from capdex.embedder import Embedder
from capdex.indexer.ocr import embedding_text, ocr_for_embedding
from capdex.store import repo
from capdex.store.db import Database
from capdex.store.models import HUMAN, Caption, Photo, Vector, utcnow
from capdex.store.vectors import VectorIndex

MAX_CAPTION_LENGTH = 2000


class CaptionRejected(ValueError):
    """The caption text is not acceptable; str(error) says why."""


class PhotoNotFound(LookupError):
    """No photo has this id."""


@dataclass
class CaptionChange:
    """What one caption edit did to the vectors, for updating an in-memory index."""

    photo_id: int
    removed: list[int] = field(default_factory=list)
    added: list[tuple[int, np.ndarray]] = field(default_factory=list)

    def apply_to(self, index: VectorIndex, db: Database) -> None:
        """Bring `index` up to date and save it (merging other writers' work; see store.vectors)."""
        index.remove(self.removed)
        if self.added:
            index.add(np.array([i for i, _ in self.added]), np.stack([v for _, v in self.added]))
        index.save(db)


def clean_caption(text: str) -> str:
    """The caption as stored: trimmed, non-empty, not absurdly long."""
    text = " ".join(text.split())
    if not text:
        raise CaptionRejected("the caption is empty")
    if len(text) > MAX_CAPTION_LENGTH:
        raise CaptionRejected(f"the caption is longer than {MAX_CAPTION_LENGTH} characters")
    return text


def set_human_caption(db: Database, embedder: Embedder, photo_id: int, text: str,
                      origin: str | None = None, ocr_words: int = 40) -> CaptionChange:
    """Store `text` as the photo's human caption and re-embed it.

    `origin` is recorded as the caption's `captioner` ("xmp" for sidecars, None for people).
    Vectors of every embedder are dropped (they described the old text); the current
    embedder's is replaced at once, others are re-made by the next index run that uses them.
    The vector embeds the text the photo shows too (`ocr_words` words, settings.ocr_embed_words).
    """
    text = clean_caption(text)
    ocr_id, shown = _shown_text(db, photo_id)
    # Before the transaction: never hold the lock for a model.
    vector = embedder.embed([embedding_text(text, shown, ocr_words)])[0]
    change = CaptionChange(photo_id)
    with db.session() as session:
        photo = session.get(Photo, photo_id)
        if photo is None:
            raise PhotoNotFound(f"no photo with id {photo_id}")
        caption = next((c for c in photo.captions if c.source == HUMAN), None)
        if caption is None:
            caption = Caption(photo_id=photo_id, text=text, source=HUMAN, captioner=origin)
            photo.captions.append(caption)
        else:
            caption.text, caption.captioner, caption.created_at = text, origin, utcnow()
        session.flush()
        change.removed = repo.delete_vectors_of(session, [photo_id])
        if _shown_text(session, photo_id)[0] != ocr_id:
            return change  # OCR changed meanwhile: the next index run embeds the photo
        row = Vector.of(photo_id, caption.id, embedder.name, vector, ocr_id)
        session.add(row)
        session.flush()
        change.added.append((row.id, vector))
    return change


def _shown_text(db_or_session, photo_id: int) -> tuple[int | None, str]:  # type: ignore[no-untyped-def]
    """(OCR row id, text) of the text the photo shows, or (None, "")."""
    if isinstance(db_or_session, Database):
        with db_or_session.read() as session:
            return _shown_text(session, photo_id)
    return ocr_for_embedding(db_or_session, [photo_id]).get(photo_id, (None, ""))


def clear_human_caption(db: Database, embedder: Embedder, photo_id: int,
                        ocr_words: int = 40) -> CaptionChange:
    """Remove the photo's human caption; its machine caption (if any) speaks again."""
    change = CaptionChange(photo_id)
    with db.session() as session:
        photo = session.get(Photo, photo_id)
        if photo is None:
            raise PhotoNotFound(f"no photo with id {photo_id}")
        human = next((c for c in photo.captions if c.source == HUMAN), None)
        if human is None:
            return change
        change.removed = repo.delete_vectors_of(session, [photo_id])
        photo.captions.remove(human)
        session.flush()
        machine = repo.effective_caption(photo.captions)
        machine_id, machine_text = (machine.id, machine.text) if machine else (None, None)
    if machine_id is None:
        return change
    ocr_id, shown = _shown_text(db, photo_id)
    vector = embedder.embed([embedding_text(machine_text, shown, ocr_words)])[0]  # type: ignore[arg-type]
    with db.session() as session:
        # Re-check under the write lock: another writer may have captioned it meanwhile.
        taken = session.scalar(select(Vector.id).where(Vector.photo_id == photo_id,
                                                       Vector.embedder == embedder.name))
        current = repo.effective_caption(
            session.scalars(select(Caption).where(Caption.photo_id == photo_id)).all())
        if (taken is None and current is not None and current.id == machine_id
                and _shown_text(session, photo_id)[0] == ocr_id):
            row = Vector.of(photo_id, machine_id, embedder.name, vector, ocr_id)
            session.add(row)
            session.flush()
            change.added.append((row.id, vector))
    return change
