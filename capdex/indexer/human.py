"""Captions people write: stored beside the machine caption, embedded at once, never overwritten.

Used by the API (`PUT /api/photos/{id}/caption`) and `capdex caption-set`. The vector changes in
the same transaction as the caption, so the database never holds a vector of a caption that no
longer speaks for its photo; the caller then hands the change to its `IndexWriter`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.orm import Session

from capdex.embedder import Embedder
from capdex.indexer.embed import VectorRefresh
from capdex.store import captions
from capdex.store.captions import MAX_CAPTION_LENGTH
from capdex.store.db import Database
from capdex.store.index_writer import IndexWriter, VectorChange
from capdex.store.models import Photo
from capdex.store.vectors import VectorIndex

__all__ = ["MAX_CAPTION_LENGTH", "CaptionChange", "CaptionRejected", "PhotoNotFound",
           "clean_caption", "clear_human_caption", "set_human_caption"]


class CaptionRejected(ValueError):
    """The caption text is not acceptable; str(error) says why."""


class PhotoNotFound(LookupError):
    """No photo has this id."""


@dataclass
class CaptionChange(VectorChange):
    """What one caption edit did to the vectors, for the vector index."""

    photo_id: int = 0

    def apply_to(self, index: VectorIndex, db: Database) -> None:
        """Bring `index` up to date and save it (merging other writers' work; see store.vectors)."""
        IndexWriter.live(db, lambda: index).apply_and_save(self)


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
    """Store `text` as the photo's human caption and re-embed the photo.

    `origin` is recorded as the caption's `captioner` ("xmp" for sidecars, None for people).
    Vectors of every embedder are replaced (they described the old text); the current
    embedder's is made at once, in the same transaction, with the rest of the photo's text
    (`capdex.indexer.embed`; `ocr_words`: settings.ocr_embed_words).
    """
    text = clean_caption(text)
    return _edit(db, embedder, photo_id, ocr_words,
                 lambda session: captions.set_human_caption(session, photo_id, text, origin))


def clear_human_caption(db: Database, embedder: Embedder, photo_id: int,
                        ocr_words: int = 40) -> CaptionChange:
    """Remove the photo's human caption; its machine caption (if any) speaks again."""
    return _edit(db, embedder, photo_id, ocr_words,
                 lambda session: captions.clear_human_caption(session, photo_id))


def _edit(db: Database, embedder: Embedder, photo_id: int, ocr_words: int,
          change: Callable[[Session], object]) -> CaptionChange:
    embedder.warm_up()  # never load the model while holding the write lock
    with db.session() as session:
        if session.get(Photo, photo_id) is None:
            raise PhotoNotFound(f"no photo with id {photo_id}")
        refresh = VectorRefresh(session, embedder, ocr_words)
        refresh.watch([photo_id])
        change(session)
        done = refresh.finish()
    return CaptionChange(done.removed, done.added, photo_id)
