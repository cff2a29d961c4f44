"""What a photo's vector embeds, and keeping every photo's vector current — one way for index
runs, `capdex import` and people's caption edits.

The text (`embedding_text`) is the photo's effective caption (a human one wins), the embedded
words stages added ("two people"; `capdex.store.words`), then the first `ocr_embed_words` words
it shows. Measured when OCR came (issue 10, `benchmarks/ocr.py`: 26 photos, 16 queries about
text photos show, 8 about what photos show): the caption alone finds 1 of 16 text queries first
(MRR 0.19); one combined vector and two vectors per photo both find 16 of 16 (MRR 1.00) and
neither moves the picture queries. One vector per photo keeps FAISS ids, counts and ranking
simple. The vector row records the caption and OCR row it embedded.

Vectors are replaced, never dropped first: whoever changes what a photo's vector embeds (a
caption, the text it shows, embedded words) embeds the new text and swaps the vector row in
the same transaction (`VectorRefresh`), so a run stopped at any moment — Ctrl-C, a cancelled
job, SIGTERM during OCR — leaves every committed photo with a vector. A photo is embedded
again only when its text changed.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from typing import NamedTuple

import numpy as np
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from capdex.embedder import Embedder
from capdex.store import repo
from capdex.store.captions import effective_caption
from capdex.store.db import Database
from capdex.store.index_writer import VectorChange
from capdex.store.models import Caption, File, OcrText, Vector
from capdex.store.ocr import shown_texts
from capdex.store.words import embedded_words

#: Photos embedded and committed together by `refresh_vectors`.
CHUNK = 256


def embedding_text(caption: str, ocr_text: str | None, max_words: int, words: str = "") -> str:
    """What a photo's vector embeds: its caption, the embedded words stages added, then the
    first `max_words` words it shows ("<caption>, <words> Text: <shown>")."""
    head = f"{caption}, {words}" if words else caption
    shown = (ocr_text or "").split()[:max_words]
    return f"{head} Text: {' '.join(shown)}" if shown else head


class VectorText(NamedTuple):
    """What a photo's vector should be made of: the caption and OCR row, and the text."""

    caption_id: int
    ocr_id: int | None
    text: str


def vector_texts(session: Session, photo_ids: Sequence[int],
                 ocr_words: int) -> dict[int, VectorText]:
    """{photo id: VectorText} of these photos (those without a caption are absent)."""
    ids = list(photo_ids)
    if not ids:
        return {}
    by_photo: dict[int, list[Caption]] = {}
    for start in range(0, len(ids), 500):
        for row in session.scalars(select(Caption).where(
                Caption.photo_id.in_(ids[start : start + 500]))):
            by_photo.setdefault(row.photo_id, []).append(row)
    shown = shown_texts(session, ids)
    words = embedded_words(session, ids)
    out = {}
    for photo_id, captions in by_photo.items():
        caption = effective_caption(captions)
        if caption is None:
            continue
        ocr_id, text = shown.get(photo_id, (None, ""))
        out[photo_id] = VectorText(caption.id, ocr_id, embedding_text(
            caption.text, text, ocr_words, words.get(photo_id, "")))
    return out


def embedding_texts(session: Session, photo_ids: list[int],
                    ocr_words: int) -> list[tuple[int, int, int | None, str]]:
    """(photo id, caption id, OCR row id or None, text) per photo, in photo id order."""
    return [(p, t.caption_id, t.ocr_id, t.text)
            for p, t in sorted(vector_texts(session, photo_ids, ocr_words).items())]


def _our_vectors(session: Session, embedder: str,
                 photo_ids: Sequence[int]) -> dict[int, tuple[int, int, int | None]]:
    """{photo id: (vector id, caption id, OCR row id)} of `embedder`'s vectors of these photos."""
    out = {}
    ids = list(photo_ids)
    for start in range(0, len(ids), 500):
        rows = session.execute(select(Vector.photo_id, Vector.id, Vector.caption_id, Vector.ocr_id)
                               .where(Vector.embedder == embedder,
                                      Vector.photo_id.in_(ids[start : start + 500])))
        out.update({photo_id: (vid, cid, oid) for photo_id, vid, cid, oid in rows})
    return out


def _swap(session: Session, embedder: str, items: list[tuple[int, VectorText, np.ndarray]],
          change: VectorChange, *, every_embedder: bool) -> None:
    """Replace the vectors of these photos with the new ones, in the caller's transaction:
    with `every_embedder` (their text changed) the other embedders' too, which describe the
    old text; else only `embedder`'s (vectors of an embedder used before stay, so switching
    back costs nothing)."""
    ids = [photo_id for photo_id, _, _ in items]
    change.removed += repo.delete_vectors_of(session, ids, None if every_embedder else embedder)
    rows = [Vector.of(photo_id, t.caption_id, embedder, vector, t.ocr_id)
            for photo_id, t, vector in items]
    session.add_all(rows)
    session.flush()
    change.added += [(row.id, vector) for row, (_, _, vector) in zip(rows, items, strict=True)]


class VectorRefresh:
    """Within one write transaction: note what the photos a commit is about to change embed
    (`watch`, before writing), then (`finish`, after writing) embed and swap the vectors of
    those whose text changed or that have none.

    Embedding happens inside the transaction (holding the write lock for as long as the
    embedder takes, ~ms per photo): the one text rule then applies to exactly what is being
    committed. Callers load the embedder before opening the transaction.
    """

    def __init__(self, session: Session, embedder: Embedder, ocr_words: int) -> None:
        self.session, self.embedder, self.ocr_words = session, embedder, ocr_words
        self._before: dict[int, VectorText | None] = {}
        self._new: set[int] = set()
        #: Our embedder's vector ids of the watched photos, when watched: a write may delete
        #: one itself (`capdex.store.words.set_words`), and the index must hear of it.
        self._vectors: set[int] = set()
        #: Stored photos (not created in this transaction) embedded again by `finish`.
        self.reembedded = 0

    def watch(self, photo_ids: Iterable[int], *, new: bool = False) -> None:
        """Photos this transaction may change (`new`: created in it, nothing to read)."""
        ids = [p for p in photo_ids if p not in self._before]
        if new:
            self._new.update(ids)
        before = {} if new else vector_texts(self.session, ids, self.ocr_words)
        if not new:
            self._vectors.update(v[0] for v in _our_vectors(
                self.session, self.embedder.name, ids).values())
        for photo_id in ids:
            self._before[photo_id] = before.get(photo_id)

    def finish(self) -> VectorChange:
        """Embed and swap what changed; the vector ids removed and added."""
        change = VectorChange()
        ids = list(self._before)
        if not ids:
            return change
        self.session.flush()
        now = vector_texts(self.session, ids, self.ocr_words)
        have = _our_vectors(self.session, self.embedder.name, ids)
        change.removed += sorted(self._vectors - {v[0] for v in have.values()})
        todo: list[tuple[int, VectorText]] = []
        for photo_id in ids:
            text, vector = now.get(photo_id), have.get(photo_id)
            if text is None:  # no caption speaks for it any more: nothing to embed
                change.removed += repo.delete_vectors_of(self.session, [photo_id])
                continue
            if vector is not None and (before := self._before[photo_id]) is not None \
                    and before.text == text.text:
                if vector[1:] != (text.caption_id, text.ocr_id):  # same words, other rows
                    self.session.execute(update(Vector).where(Vector.id == vector[0]).values(
                        caption_id=text.caption_id, ocr_id=text.ocr_id))
                continue
            todo.append((photo_id, text))
        if todo:
            self.reembedded += sum(1 for photo_id, _ in todo if photo_id not in self._new)
            vectors = self.embedder.embed([t.text for _, t in todo])
            _swap(self.session, self.embedder.name,
                  [(p, t, v) for (p, t), v in zip(todo, vectors, strict=True)], change,
                  every_embedder=True)
        return change


def photos_needing_vectors(db: Database, embedder: str) -> list[int]:
    """Photos with a file whose vector of `embedder` is missing or embeds other OCR text than
    the photo's current one (left by an older capdex or another writer), in id order.

    Runs on every index run: it reads only the photos that show text and the vectors that
    embedded some text (through `ix_vectors_ocr_id`), never the whole vectors table.
    """
    with db.read() as session:
        # NOT EXISTS probes the (photo, embedder) index per file
        has_vector = select(Vector.id).where(Vector.photo_id == File.photo_id,
                                             Vector.embedder == embedder)
        missing = set(session.scalars(select(File.photo_id).distinct()
                                      .where(~has_vector.exists())))
        shown = dict(session.execute(
            select(OcrText.photo_id, OcrText.id).where(OcrText.text != "")).all())
        ids = list(shown)
        for start in range(0, len(ids), 500):
            rows = session.execute(select(Vector.photo_id, Vector.ocr_id).where(
                Vector.embedder == embedder, Vector.photo_id.in_(ids[start : start + 500])))
            missing.update(photo_id for photo_id, ocr_id in rows if ocr_id != shown[photo_id])
        missing.update(session.scalars(  # embedded text the photo no longer shows
            select(Vector.photo_id).join(OcrText, OcrText.id == Vector.ocr_id)
            .where(Vector.embedder == embedder, OcrText.text == "")))
        present = set(session.scalars(select(File.photo_id).where(File.photo_id.in_(missing))))
    return sorted(missing & present)


def refresh_vectors(db: Database, embedder: Embedder, photo_ids: Sequence[int], ocr_words: int, *,
                    stop: threading.Event | None = None,
                    progress: Callable[[str, int, int], None] | None = None,
                    on_change: Callable[[VectorChange], None] | None = None) -> int:
    """Embed these photos' current text and swap their vectors, a chunk per transaction;
    returns how many vectors were stored.

    Embedding happens before each transaction (never holding the write lock for the model);
    the transaction re-checks, under the write lock, that the text embedded still is the
    photo's (another process, e.g. the server storing a human caption, may have changed it and
    embedded it itself). `on_change` gets each committed chunk's change, for the vector index.
    """
    total = 0
    ids = list(photo_ids)
    for start in range(0, len(ids), CHUNK):
        if stop is not None and stop.is_set():
            break
        chunk = ids[start : start + CHUNK]
        with db.read() as session:
            wanted = vector_texts(session, chunk, ocr_words)
        if progress is not None:
            progress("embed", start, len(ids))
        if not wanted:
            continue
        order = sorted(wanted)
        vectors = embedder.embed([wanted[p].text for p in order])
        change = VectorChange()
        with db.session() as session:
            now = vector_texts(session, order, ocr_words)
            have = _our_vectors(session, embedder.name, order)
            items = []
            for photo_id, vector in zip(order, vectors, strict=True):
                current = have.get(photo_id)
                if now.get(photo_id) != wanted[photo_id]:
                    continue  # changed meanwhile: its writer embedded it
                if current is not None and current[1:] == wanted[photo_id][:2]:
                    continue  # someone else made the same vector meanwhile
                items.append((photo_id, wanted[photo_id], vector))
            _swap(session, embedder.name, items, change, every_embedder=False)
        if on_change is not None:
            on_change(change)
        total += len(change.added)
    if progress is not None and ids and not (stop is not None and stop.is_set()):
        progress("embed", len(ids), len(ids))
    return total
