"""What photos look like: a captioner's pooled image features, one row per photo, for "similar
photos" (`photo_looks`, migration 0011).

Stored as float16 (half the bytes; cosines move by ~1e-3). Like caption vectors, the rows are
the truth and the looks FAISS file (`looks.faiss`, kept by `IndexWriter.for_looks`) a cache of
the rows of one model, rebuilt from them when damaged or missing. A row is replaced (a new id)
when another model describes the photo, so an id in the file always means one row.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from capdex.store.models import MACHINE as MACHINE_SOURCE
from capdex.store.models import Caption, File, PhotoLooks
from capdex.store.vectors import VectorRows

if TYPE_CHECKING:
    from capdex.store.db import Database

#: The looks FAISS file, beside the caption index in the data dir.
INDEX_FILE = "looks.faiss"


def encode(vector: np.ndarray) -> bytes:
    """float16 bytes of an L2-normalised vector."""
    array = np.asarray(vector, dtype=np.float32).ravel()
    norm = float(np.linalg.norm(array))
    if not np.isfinite(norm) or norm == 0.0:
        raise ValueError("image features must be a finite, non-zero vector")
    return (array / norm).astype(np.float16).tobytes()


def decode(blob: bytes, dim: int) -> np.ndarray:
    """The float32 vector of stored bytes."""
    return np.frombuffer(blob, dtype=np.float16).astype(np.float32).reshape(dim)


def set_looks(session: Session, photo_id: int, vector: np.ndarray, model: str) -> None:
    """Record what the photo looks like to `model` (replacing what another model saw)."""
    blob = encode(vector)
    row = session.scalar(select(PhotoLooks).where(PhotoLooks.photo_id == photo_id))
    if row is not None:
        if row.model == model and row.vector == blob:
            return
        session.delete(row)  # a new id: the FAISS file must not mistake it for the old row
        session.flush()
    session.add(PhotoLooks(photo_id=photo_id, model=model, dim=len(blob) // 2, vector=blob))


def stale_photos(session: Session, captioner: str, model: str) -> list[int]:
    """Photos with a file whose machine caption `captioner` made (so its forward pass gives
    their looks) and no looks of `model`, in id order."""
    current = select(PhotoLooks.photo_id).where(PhotoLooks.model == model)
    by_captioner = select(Caption.photo_id).where(Caption.source == MACHINE_SOURCE,
                                                  Caption.captioner == captioner)
    return list(session.scalars(
        select(File.photo_id).distinct()
        .where(File.photo_id.in_(by_captioner), File.photo_id.not_in(current))
        .order_by(File.photo_id)))


def looks_of(session: Session, photo_id: int) -> tuple[str, np.ndarray] | None:
    """(model, vector) of the photo's looks, if it has any."""
    row = session.scalar(select(PhotoLooks).where(PhotoLooks.photo_id == photo_id))
    return (row.model, decode(row.vector, row.dim)) if row is not None else None


def newest_model(db: Database) -> str | None:
    """The model of the most recently stored looks: the one index runs make now."""
    with db.read() as session:
        return session.scalar(select(PhotoLooks.model).order_by(PhotoLooks.id.desc()).limit(1))


def dim_of(db: Database, model: str) -> int | None:
    """The size of `model`'s stored looks (None: it has none)."""
    with db.read() as session:
        return session.scalar(select(PhotoLooks.dim).where(PhotoLooks.model == model).limit(1))


def photos_of(db: Database, looks_ids: list[int]) -> dict[int, int]:
    """looks id → photo id, for photos that still have a file."""
    out: dict[int, int] = {}
    has_file = select(File.photo_id)
    with db.read() as session:
        for start in range(0, len(looks_ids), 5000):
            chunk = looks_ids[start : start + 5000]
            out.update(session.execute(select(PhotoLooks.id, PhotoLooks.photo_id).where(
                PhotoLooks.id.in_(chunk), PhotoLooks.photo_id.in_(has_file))).all())
    return out


# -- the rows the looks FAISS index caches (`store.vectors.VectorRows`) ----------------------------
def _ids(db: Database, model: str) -> np.ndarray:
    with db.read() as session:
        rows = session.scalars(select(PhotoLooks.id).where(PhotoLooks.model == model)).all()
    return np.array(sorted(rows), dtype=np.int64)


def _stamp(db: Database, model: str) -> tuple[int, int | None]:
    with db.engine.connect() as conn:
        count, highest = conn.execute(select(func.count(PhotoLooks.id), func.max(PhotoLooks.id))
                                      .where(PhotoLooks.model == model)).one()
    return int(count), highest


def _load(db: Database, ids: list[int], dim: int) -> tuple[np.ndarray, np.ndarray]:
    with db.read() as session:
        rows = session.execute(select(PhotoLooks.id, PhotoLooks.vector)
                               .where(PhotoLooks.id.in_(ids))).all()
    out_ids = np.array([r[0] for r in rows], dtype=np.int64)
    matrix = np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float16)
    return out_ids, matrix.astype(np.float32).reshape(len(rows), dim)


ROWS = VectorRows(_ids, _stamp, _load)
