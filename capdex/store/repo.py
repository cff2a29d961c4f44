"""Queries shared by the write and read paths. Functions take a Database or a Session."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from sqlalchemy import delete, exists, func, select, text
from sqlalchemy.orm import Session

from capdex.store.captions import effective_caption
from capdex.store.models import HUMAN as HUMAN_SOURCE
from capdex.store.models import Caption, Face, File, IndexingError, Photo, Vector

__all__ = ["Counts", "counts", "delete_vectors_of", "effective_caption", "first_path",
           "load_photo", "load_vectors", "photos_of_vectors", "photos_page", "vector_ids",
           "vector_stamp", "vectors_of_photos"]

if TYPE_CHECKING:
    from capdex.store.db import Database


def vector_ids(db: Database, embedder: str) -> np.ndarray:
    """Sorted ids of every stored vector of `embedder`."""
    with db.read() as session:
        rows = session.scalars(select(Vector.id).where(Vector.embedder == embedder)).all()
    return np.array(sorted(rows), dtype=np.int64)


def vector_stamp(db: Database, embedder: str) -> tuple[int, int | None]:
    """(how many, highest id) of the stored vectors of `embedder`; ids are never reused, so two
    equal stamps mean the same vectors (see `store.vectors.index_is_current`)."""
    with db.engine.connect() as conn:
        count, highest = conn.execute(
            select(func.count(Vector.id), func.max(Vector.id)).where(Vector.embedder == embedder)
        ).one()
    return int(count), highest


def load_vectors(db: Database, ids: list[int], dim: int) -> tuple[np.ndarray, np.ndarray]:
    """The stored vectors with these ids, as (ids, float32 matrix)."""
    with db.read() as session:
        rows = session.execute(select(Vector.id, Vector.vector).where(Vector.id.in_(ids))).all()
    out_ids = np.array([r[0] for r in rows], dtype=np.int64)
    matrix = np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float32).reshape(len(rows), dim)
    return out_ids, matrix


def load_photo(db: Database, photo_id: int) -> Photo | None:
    """The photo with its files, captions, OCR text, faces and place loaded (for showing it)."""
    from sqlalchemy.orm import selectinload

    with db.read() as session:
        return session.get(Photo, photo_id, options=[
            selectinload(Photo.files), selectinload(Photo.captions), selectinload(Photo.ocr),
            selectinload(Photo.faces).selectinload(Face.person), selectinload(Photo.place)])


def photos_page(db: Database, limit: int, offset: int) -> tuple[int, list[Photo]]:
    """(how many photos have a file, one page of them newest taken first, undated last), with
    their files and captions loaded."""
    from sqlalchemy.orm import selectinload

    present = select(File.photo_id).distinct()
    with db.read() as session:
        total = session.scalar(select(func.count()).select_from(present.subquery())) or 0
        photos = list(session.scalars(
            select(Photo).where(Photo.id.in_(present))
            .order_by(Photo.taken_at.is_(None), Photo.taken_at.desc(), Photo.id.desc())
            .limit(limit).offset(offset)
            .options(selectinload(Photo.files), selectinload(Photo.captions))))
    return total, photos


@dataclass(frozen=True)
class Counts:
    photos: int
    files: int
    vectors: int
    captions: int
    errors: int


def counts(db: Database, embedder: str) -> Counts:
    """How much is stored: photos with at least one file, files, vectors of `embedder`, errors."""
    with db.read() as session:
        photos = session.scalar(select(func.count(func.distinct(File.photo_id)))) or 0
        files = session.scalar(select(func.count(File.id))) or 0
        vectors = session.scalar(
            select(func.count(Vector.id)).where(Vector.embedder == embedder)
        ) or 0
        captions = session.scalar(select(func.count(Caption.id))) or 0
        errors = session.scalar(select(func.count(IndexingError.id))) or 0
    return Counts(photos=photos, files=files, vectors=vectors, captions=captions, errors=errors)


def file_count(db: Database) -> int:
    """How many files the index holds (0: nothing indexed yet)."""
    with db.read() as session:
        return session.scalar(select(func.count(File.id))) or 0


def captions_by_source(db: Database) -> dict[str, int]:
    """Captions of photos that still have a file, by what wrote them: each machine captioner by
    name, and "human" for people's own (and XMP sidecars')."""
    with db.read() as session:
        rows = session.execute(
            select(Caption.source, Caption.captioner, func.count(Caption.id))
            .where(Caption.photo_id.in_(select(File.photo_id).distinct()))
            .group_by(Caption.source, Caption.captioner)
        ).all()
    counts: dict[str, int] = {}
    for source, captioner, n in rows:
        key = "human" if source == HUMAN_SOURCE else (captioner or "unknown")
        counts[key] = counts.get(key, 0) + n
    return dict(sorted(counts.items(), key=lambda item: (item[0] == "human", -item[1], item[0])))


def delete_vectors_of(session: Session, photo_ids: Iterable[int],
                      embedder: str | None = None) -> list[int]:
    """Remove the vectors of these photos (only `embedder`'s, if given); return the removed
    vector ids (for the index)."""
    photo_ids = list(photo_ids)
    if not photo_ids:
        return []
    query = select(Vector.id).where(Vector.photo_id.in_(photo_ids))
    if embedder is not None:
        query = query.where(Vector.embedder == embedder)
    ids = list(session.scalars(query))
    if ids:
        session.execute(delete(Vector).where(Vector.id.in_(ids)))
    return ids


def first_path(photo: Photo) -> str | None:
    """The path people see for a photo: its oldest known file."""
    return photo.files[0].path if photo.files else None


_CHUNK = 5000  # ids per IN list where no faster way exists


def _id_lists(db: Database, sql: str, ids: Sequence[int], **params: object) -> list[tuple[int, int]]:
    """Rows of `sql`, whose `:ids` is a JSON array of ids (SQLite's json_each: one statement
    however many ids, where tens of thousands of bound parameters would be slow)."""
    with db.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text(sql), {"ids": json.dumps(list(ids)), **params})]


def photos_of_vectors(db: Database, vector_ids: Sequence[int]) -> dict[int, int]:
    """vector id → photo id, for the photos among these that still have a file."""
    if not vector_ids:
        return {}
    if db.engine.dialect.name == "sqlite":
        return dict(_id_lists(db, "SELECT v.id, v.photo_id FROM vectors v "
                                  "WHERE v.id IN (SELECT value FROM json_each(:ids)) "
                                  "AND EXISTS (SELECT 1 FROM files f WHERE f.photo_id = v.photo_id)",
                              vector_ids))
    has_file = exists().where(File.photo_id == Vector.photo_id)
    out: dict[int, int] = {}
    with db.read() as session:
        for start in range(0, len(vector_ids), _CHUNK):
            chunk = list(vector_ids[start : start + _CHUNK])
            out.update(session.execute(select(Vector.id, Vector.photo_id)
                                       .where(Vector.id.in_(chunk), has_file)).all())
    return out


def vectors_of_photos(db: Database, photo_ids: Sequence[int], embedder: str) -> dict[int, int]:
    """vector id → photo id for these photos' vectors of `embedder`."""
    if not photo_ids:
        return {}
    if db.engine.dialect.name == "sqlite":
        return dict(_id_lists(db, "SELECT v.id, v.photo_id FROM vectors v "
                                  "WHERE v.photo_id IN (SELECT value FROM json_each(:ids)) "
                                  "AND v.embedder = :embedder", photo_ids, embedder=embedder))
    out: dict[int, int] = {}
    with db.read() as session:
        for start in range(0, len(photo_ids), _CHUNK):
            chunk = list(photo_ids[start : start + _CHUNK])
            out.update(session.execute(select(Vector.id, Vector.photo_id).where(
                Vector.embedder == embedder, Vector.photo_id.in_(chunk))).all())
    return out
