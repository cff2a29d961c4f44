"""Merge a `capdex spark-index` Parquet result into the store and its vector index.

The identity rules are `capdex index`'s: a photo is its content hash, so a known hash only gains
a file (never a second photo or a new caption); a human caption always keeps speaking for its
photo; a vector from another embedder than the store's is not used (the caption is stored and
embedded here, so the index never mixes embedders); failed rows go to the errors table. The
vector index is then brought in line with the database under its save lock
(`VectorIndex.save(db)`), so importing while a server runs loses nothing.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from capdex.embedder import Embedder, canonical_name, get_embedder
from capdex.index_lock import DataDirBusy, index_lock
from capdex.indexer.embed import photos_needing_vectors, refresh_vectors, vector_texts
from capdex.indexer.stage import Stage
from capdex.settings import Settings
from capdex.store import captions, errors, photos
from capdex.store.db import Database
from capdex.store.index_writer import IndexWriter
from capdex.store.models import File, Vector
from capdex.store.photos import PhotoFacts

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
    except Exception as exc:  # pyarrow's errors vary; say what went wrong
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
    try:
        with index_lock(settings):
            dim: int | None = None
            stages = _stages(settings)
            for rows in read_rows(source):
                summary.rows += len(rows)
                dim = _merge(db, rows, store_embedder, summary, stages,
                             settings.ocr_embed_words) or dim
            with db.session() as session:
                photos.drop_orphan_vectors(session)
            model = embedder
            wanted = photos_needing_vectors(db, store_embedder)
            if wanted:
                # As an index run embeds them (caption + OCR text + words), so a photo gets one
                # vector whichever way it came in.
                model = model or get_embedder(settings)
                summary.reembedded = refresh_vectors(db, model, wanted, settings.ocr_embed_words)
                dim = model.dim
            if dim is not None or settings.index_path.exists():
                size = dim if dim is not None else (lambda: (model or get_embedder(settings)).dim)
                # opening brings the file in line with the database, under its save lock
                IndexWriter.for_data_dir(settings, db, store_embedder, size).sync()
    except DataDirBusy as exc:
        raise IndexerError(str(exc)) from exc
    summary.seconds = time.monotonic() - started
    return summary


def _stages(settings: Settings) -> dict[str, Stage]:
    """The stages whose results a Parquet file may carry, to write them (no model is loaded)."""
    from capdex.indexer.stages import STAGES

    created = (cls.create(settings, {"ocr": True, "faces": True}) for cls in STAGES)
    return {stage.name: stage for stage in created if stage is not None}


def _merge(db: Database, rows: list[dict[str, Any]], store_embedder: str,
           summary: ImportSummary, stages: dict[str, Stage], ocr_words: int) -> int | None:
    """One transaction for one chunk of rows; returns the dimension of vectors it stored."""
    dim = None
    with db.session() as session:
        photo_of = photos.photos_by_hash(session, {r["content_hash"] for r in rows
                                                   if r["content_hash"]})
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
                errors.record_error(session, path, row["error"] or "no caption", row["size"],
                                    row["mtime_ns"])
                summary.failed += 1
                continue
            photo_id = photo_of.get(row["content_hash"])
            if photo_id is None:
                photo_id, stored = _create_photo(session, row, store_embedder, stages, ocr_words)
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
            errors.clear_errors(session, [path])
        session.flush()
    return dim


def _create_photo(session: Session, row: dict[str, Any], store_embedder: str,
                  stages: dict[str, Stage], ocr_words: int) -> tuple[int, int | None]:
    """A new photo with its machine caption and the other stages' results, and its vector when
    it is our embedder's and embeds what this store would (else `refresh_vectors` embeds it)."""
    [photo_id] = photos.create_photos(session, [PhotoFacts(
        row["content_hash"], row["size"], row.get("width"), row.get("height"),
        row.get("taken_at"), row.get("camera_make"), row.get("camera_model"), row.get("lens"),
        row.get("gps_latitude"), row.get("gps_longitude"))])
    captions.set_machine_caption(session, photo_id, row["caption"], row.get("captioner"),
                                 row.get("captioner_version"))
    for name, entry in json.loads(row.get("stages") or "{}").items():
        stage = stages.get(name)
        if stage is None:
            log.warning("%s: results of an unknown stage %r are not imported", row["path"], name)
            continue
        stage.write(session, photo_id, entry["result"], entry["version"])
    vector = row.get("vector")
    if row.get("embedder") != store_embedder or not vector:
        return photo_id, None
    session.flush()
    text = vector_texts(session, [photo_id], ocr_words).get(photo_id)
    if text is None or text.text != (row.get("embedded_text") or row["caption"]):
        return photo_id, None  # it embeds other words here (e.g. another ocr_embed_words)
    session.add(Vector.of(photo_id, text.caption_id, store_embedder, vector, text.ocr_id))
    return photo_id, len(vector)
