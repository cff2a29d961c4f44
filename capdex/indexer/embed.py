"""Embed every present photo that lacks a vector of the embedder: one way for index runs
(`Indexer._embed_missing`) and `capdex import`, so both embed the same text for a photo.

The text is the photo's effective caption (a human one wins) followed by the first words of its
OCR text (`indexer.ocr.embedding_text`); the vector records the OCR row it embedded.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import numpy as np
from sqlalchemy import select

from capdex.embedder import Embedder
from capdex.indexer.ocr import embedding_text, ocr_for_embedding
from capdex.store import repo
from capdex.store.words import embedded_words
from capdex.store.db import Database
from capdex.store.models import Caption, File, Vector

#: Photos embedded and committed together.
CHUNK = 256


def photos_without_vectors(db: Database, embedder: str) -> list[int]:
    """Ids of photos that have a file but no vector of `embedder`, in id order."""
    with db.read() as session:
        # NOT EXISTS probes the (photo, embedder) index per file; NOT IN first listed every
        # vector of the embedder (a quarter of an unchanged re-run's database time)
        has_vector = select(Vector.id).where(Vector.photo_id == File.photo_id,
                                             Vector.embedder == embedder)
        return list(session.scalars(select(File.photo_id).distinct()
                                    .where(~has_vector.exists())
                                    .order_by(File.photo_id)))


def effective_captions(session, photo_ids: list[int]) -> list[tuple[int, int, str]]:  # type: ignore[no-untyped-def]
    """(photo id, caption id, text) of the caption that speaks for each photo."""
    by_photo: dict[int, list[Caption]] = {}
    for caption in session.scalars(select(Caption).where(Caption.photo_id.in_(photo_ids))):
        by_photo.setdefault(caption.photo_id, []).append(caption)
    chosen = [repo.effective_caption(v) for v in by_photo.values()]
    return sorted((c.photo_id, c.id, c.text) for c in chosen if c is not None)


def embedding_texts(session, photo_ids: list[int],  # type: ignore[no-untyped-def]
                    ocr_words: int) -> list[tuple[int, int, int | None, str]]:
    """(photo id, caption id, OCR row id or None, text to embed): caption + embedded words +
    the photo's text."""
    shown = ocr_for_embedding(session, photo_ids)
    extra = embedded_words(session, photo_ids)
    out = []
    for photo_id, caption_id, caption in effective_captions(session, photo_ids):
        ocr_id, text = shown.get(photo_id, (None, ""))
        out.append((photo_id, caption_id, ocr_id,
                    embedding_text(caption, text, ocr_words, extra.get(photo_id, ""))))
    return out


def embed_missing(db: Database, embedder: Embedder, ocr_words: int, *,
                  stop: threading.Event | None = None,
                  progress: Callable[[str, int, int], None] | None = None,
                  on_added: Callable[[list[tuple[int, np.ndarray]]], None] | None = None) -> int:
    """Embed the photos lacking a vector of `embedder`; returns how many vectors were stored.

    Another process may caption a photo between our read and our write (the server storing a
    human caption); the write transaction re-checks, under the write lock, that the photo still
    lacks a vector and that the text still speaks for it. `on_added` gets each committed chunk's
    (vector id, vector) pairs, for a vector index kept in memory.
    """
    name = embedder.name
    photo_ids = photos_without_vectors(db, name)
    total = 0
    for start in range(0, len(photo_ids), CHUNK):
        if stop is not None and stop.is_set():
            break
        chunk = photo_ids[start : start + CHUNK]
        with db.read() as session:
            chosen = embedding_texts(session, chunk, ocr_words)
        if not chosen:
            continue
        if progress is not None:
            progress("embed", total, len(photo_ids))
        vectors = embedder.embed([text for _, _, _, text in chosen])
        with db.session() as session:
            now = {pid: (cid, oid, text)
                   for pid, cid, oid, text in embedding_texts(session, chunk, ocr_words)}
            taken = set(session.scalars(select(Vector.photo_id).where(
                Vector.embedder == name, Vector.photo_id.in_(chunk))))
            rows, kept = [], []
            for (photo_id, caption_id, ocr_id, text), vector in zip(chosen, vectors, strict=True):
                if photo_id in taken or now.get(photo_id) != (caption_id, ocr_id, text):
                    continue
                rows.append(Vector.of(photo_id, caption_id, name, vector, ocr_id))
                kept.append(vector)
            session.add_all(rows)
            session.flush()
            added = [(row.id, vector) for row, vector in zip(rows, kept, strict=True)]
        if on_added is not None:
            on_added(added)
        total += len(added)
    return total
