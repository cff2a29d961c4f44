"""Merge a `capdex spark-index` Parquet result into the store and its vector index.

The identity rules are `capdex index`'s: a photo is its content hash, so a known hash only gains
a file (never a second photo or a new caption); a human caption always keeps speaking for its
photo; a vector from another embedder than the store's is not used (the caption is stored and
embedded here, so the index never mixes embedders); failed rows go to the errors table. The
vector index is then brought in line with the database under its save lock
(`VectorIndex.save(db)`), so importing while a server runs loses nothing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout
from sqlalchemy import delete, select

from capdex.embedder import Embedder, canonical_name, get_embedder
from capdex.settings import Settings
from capdex.indexer.embed import embed_missing, photos_without_vectors
from capdex.store.db import Database
from capdex.store.models import MACHINE, Caption, File, IndexingError, Photo, Vector
from capdex.store.vectors import open_index

log = logging.getLogger(__name__)

#: Rows per transaction: big enough to be quick, small enough to keep each write lock short.
CHUNK_ROWS = 500
REQUIRED = ("path", "size", "mtime_ns", "content_hash", "caption", "error")


class ParquetImportError(RuntimeError):
    """The file cannot be imported (missing, not Parquet, not a spark-index result)."""


@dataclass
class ImportSummary:
    rows: int = 0
    new: int = 0
    linked: int = 0
    unchanged: int = 0
    failed: int = 0
    reembedded: int = 0
    seconds: float = 0.0

    def line(self) -> str:
        return (f"{self.new} new, {self.linked} linked to known photos, {self.unchanged} "
                f"unchanged, {self.failed} failed, {self.reembedded} embedded here "
                f"(of {self.rows} row(s)) in {self.seconds:.1f}s")

    def as_dict(self) -> dict[str, object]:
        data = dict(self.__dict__)
        data["seconds"] = round(self.seconds, 3)
        return data


def read_rows(source: str | Path) -> Iterator[list[dict[str, Any]]]:
    """The Parquet file or folder (as Spark writes it) in chunks of row dicts."""
    try:
        import pyarrow.dataset as ds
    except ImportError as exc:
        raise ParquetImportError("import needs pyarrow: pip install 'capdex[spark]'") from exc
    if not Path(source).exists():
        raise ParquetImportError(f"{source}: no such file or folder")
    try:
        dataset = ds.dataset(str(source), format="parquet")
    except Exception as exc:  # noqa: BLE001 - pyarrow's errors vary; say what went wrong
        raise ParquetImportError(f"{source} is not readable Parquet: {exc}") from exc
    missing = [c for c in REQUIRED if c not in dataset.schema.names]
    if missing:
        raise ParquetImportError(f"{source} is not a spark-index result (no column {', '.join(missing)})")
    for batch in dataset.to_batches(batch_size=CHUNK_ROWS):
        yield batch.to_pylist()


def import_parquet(settings: Settings, db: Database, source: str | Path, *,
                   embedder: Embedder | None = None) -> ImportSummary:
    """Merge `source` into the store; returns what changed. Holds the data dir's index lock."""
    from capdex.indexer.pipeline import IndexerError

    started = time.monotonic()
    summary = ImportSummary()
    store_embedder = embedder.name if embedder else canonical_name(settings.embedder)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(settings.data_dir / "index.lock"))
    try:
        lock.acquire(timeout=0)
    except Timeout as exc:
        raise IndexerError(f"another capdex index run is using {settings.data_dir}; wait for it "
                           "to finish") from exc
    try:
        dim: int | None = None
        for rows in read_rows(source):
            summary.rows += len(rows)
            dim = _merge(db, rows, store_embedder, summary) or dim
        _drop_orphan_vectors(db)
        model = embedder
        if photos_without_vectors(db, store_embedder):
            # As an index run embeds them (caption + OCR text), so a photo gets one vector
            # whichever way it came in.
            model = model or get_embedder(settings)
            summary.reembedded = embed_missing(db, model, settings.ocr_embed_words)
            dim = model.dim
        if dim is not None or settings.index_path.exists():
            index = open_index(settings.index_path, db, store_embedder,
                               dim if dim is not None else lambda: (model or get_embedder(settings)).dim,
                               settings.exact_search_max,
                               compress_above=settings.vector_compress_above)
            index.save(db)  # under the save lock, after syncing with the database
    finally:
        lock.release()
    summary.seconds = time.monotonic() - started
    return summary


def _merge(db: Database, rows: list[dict[str, Any]], store_embedder: str,
           summary: ImportSummary) -> int | None:
    """One transaction for one chunk of rows; returns the dimension of vectors it stored."""
    dim = None
    with db.session() as session:
        hashes = sorted({r["content_hash"] for r in rows if r["content_hash"]})
        photo_of = dict(session.execute(
            select(Photo.content_hash, Photo.id).where(Photo.content_hash.in_(hashes))).all())
        paths = [r["path"] for r in rows]
        files = {f.path: f for f in session.scalars(select(File).where(File.path.in_(paths)))}
        for row in rows:
            path, known = row["path"], files.get(row["path"])
            if row["error"] or not row["caption"] or not row["content_hash"]:
                if known is not None and (known.size, known.mtime_ns) == (row["size"], row["mtime_ns"]):
                    summary.unchanged += 1  # the store has this very file already
                    continue
                if known is not None:  # its old content is gone and the new one is unreadable
                    session.delete(known)
                _record_error(session, path, row["error"] or "no caption", row["size"],
                              row["mtime_ns"])
                summary.failed += 1
                continue
            photo_id = photo_of.get(row["content_hash"])
            if photo_id is None:
                photo_id, stored = _create_photo(session, row, store_embedder)
                photo_of[row["content_hash"]] = photo_id
                dim = stored or dim
                summary.new += 1
            elif known is not None and known.photo_id == photo_id:
                summary.unchanged += 1  # at most its stamp changed (touched, same bytes)
            else:
                summary.linked += 1
            if known is None:
                known = File(path=path, size=row["size"], mtime_ns=row["mtime_ns"],
                             photo_id=photo_id)
                session.add(known)
                files[path] = known
            else:
                known.size, known.mtime_ns, known.photo_id = row["size"], row["mtime_ns"], photo_id
            session.execute(delete(IndexingError).where(IndexingError.path == path))
        session.flush()
    return dim


def _create_photo(session, row: dict[str, Any], store_embedder: str) -> tuple[int, int | None]:  # type: ignore[no-untyped-def]
    """A new photo with its machine caption, and its vector when it is our embedder's."""
    photo = Photo(content_hash=row["content_hash"], size=row["size"], width=row.get("width"),
                  height=row.get("height"), taken_at=row.get("taken_at"),
                  camera_make=row.get("camera_make"), camera_model=row.get("camera_model"),
                  lens=row.get("lens"), gps_latitude=row.get("gps_latitude"),
                  gps_longitude=row.get("gps_longitude"))
    session.add(photo)
    session.flush()
    caption = Caption(photo_id=photo.id, text=row["caption"], source=MACHINE,
                      captioner=row.get("captioner"), captioner_version=row.get("captioner_version"))
    session.add(caption)
    session.flush()
    vector = row.get("vector")
    if row.get("embedder") != store_embedder or not vector:
        return photo.id, None  # embedded here with the store's embedder (`_embed_missing`)
    session.add(Vector.of(photo.id, caption.id, store_embedder, vector))
    return photo.id, len(vector)


def _record_error(session, path: str, reason: str, size: int | None, mtime_ns: int | None) -> None:  # type: ignore[no-untyped-def]
    existing = session.scalar(select(IndexingError).where(IndexingError.path == path))
    if existing is None:
        session.add(IndexingError(path=path, reason=reason, size=size, mtime_ns=mtime_ns))
    else:
        existing.reason, existing.size, existing.mtime_ns = reason, size, mtime_ns


def _drop_orphan_vectors(db: Database) -> None:
    """A file relinked to other content may leave its old photo with no file: out of the index
    (its captions stay, should it return), as an index run does."""
    with db.session() as session:
        session.execute(delete(Vector).where(Vector.photo_id.not_in(select(File.photo_id))))
