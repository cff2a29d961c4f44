"""Photos and the files that point at them, and their identity rules, written once.

A photo is content (the SHA-256 of its bytes); a file is a path pointing at one. New bytes make
a new photo; a copy or a move adds or repoints a file, never a photo or a caption; a file whose
bytes changed points at the photo of its new bytes; a photo whose last file is gone keeps its
captions (should the file come back) but leaves the vector index. Used by index runs and
`capdex import`; functions take an open session (or connection) and leave committing to the
caller.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from capdex.paths import under
from capdex.store.models import File, Photo, Vector

_CHUNK = 500


@dataclass(frozen=True, slots=True)
class PhotoFacts:
    """What a new photo's bytes say about it (from the decode: size and EXIF)."""

    content_hash: str
    size: int
    width: int | None = None
    height: int | None = None
    taken_at: datetime | None = None
    camera_make: str | None = None
    camera_model: str | None = None
    lens: str | None = None
    latitude: float | None = None
    longitude: float | None = None


def files_under(conn: Connection | Session, roots: list[str]) -> list[tuple]:
    """(id, path, size, mtime_ns, photo_id, sidecar_size, sidecar_mtime_ns) of every stored
    file under `roots` (stored form): plain rows, all at once (an unchanged re-run of a big
    library is mostly this query and the scan)."""
    return list(conn.execute(
        select(File.id, File.path, File.size, File.mtime_ns, File.photo_id, File.sidecar_size,
               File.sidecar_mtime_ns).where(under(File.path, *roots))).all())


def photos_by_hash(session: Session, hashes: Iterable[str]) -> dict[str, int]:
    """{content hash: photo id} of the stored photos among `hashes`."""
    items, out = sorted(set(hashes)), dict[str, int]()
    for start in range(0, len(items), _CHUNK):
        rows = session.execute(select(Photo.content_hash, Photo.id).where(
            Photo.content_hash.in_(items[start : start + _CHUNK])))
        out.update((content_hash, photo_id) for content_hash, photo_id in rows)
    return out


def create_photos(session: Session, facts: Sequence[PhotoFacts]) -> list[int]:
    """New photos (one INSERT); their ids, in order."""
    photos = [Photo(content_hash=f.content_hash, size=f.size, width=f.width, height=f.height,
                    taken_at=f.taken_at, camera_make=f.camera_make, camera_model=f.camera_model,
                    lens=f.lens, gps_latitude=f.latitude, gps_longitude=f.longitude)
              for f in facts]
    session.add_all(photos)
    session.flush()
    return [photo.id for photo in photos]


def add_file(session: Session, path: str, size: int, mtime_ns: int, photo_id: int) -> int:
    """A new path pointing at a photo (a copy, a move, a file of new content); its id."""
    row = File(path=path, size=size, mtime_ns=mtime_ns, photo_id=photo_id)
    session.add(row)
    session.flush()
    return row.id


def repoint_file(session: Session, file_id: int, size: int, mtime_ns: int,
                 photo_id: int | None = None) -> None:
    """A known path with a new stamp; with `photo_id`, its bytes are now that photo's."""
    values: dict[str, object] = {"size": size, "mtime_ns": mtime_ns}
    if photo_id is not None:
        values["photo_id"] = photo_id
    session.execute(update(File).where(File.id == file_id).values(**values))


def delete_files(session: Session, file_ids: Iterable[int]) -> None:
    ids = list(file_ids)
    for start in range(0, len(ids), _CHUNK):
        session.execute(delete(File).where(File.id.in_(ids[start : start + _CHUNK])))


def paths_of(session: Session, photo_ids: Sequence[int]) -> dict[int, list[str]]:
    """{photo id: its files' paths, oldest first} (photos without files are absent)."""
    out: dict[int, list[str]] = {}
    ids = list(photo_ids)
    for start in range(0, len(ids), _CHUNK):
        rows = session.execute(select(File.photo_id, File.path).where(
            File.photo_id.in_(ids[start : start + _CHUNK])).order_by(File.id))
        for photo_id, path in rows:
            out.setdefault(photo_id, []).append(path)
    return out


def hashes_of(session: Session, photo_ids: Sequence[int]) -> dict[int, str]:
    ids, out = list(photo_ids), dict[int, str]()
    for start in range(0, len(ids), _CHUNK):
        rows = session.execute(select(Photo.id, Photo.content_hash).where(
            Photo.id.in_(ids[start : start + _CHUNK])))
        out.update((photo_id, content_hash) for photo_id, content_hash in rows)
    return out


def facts_of(session: Session, photo_ids: Sequence[int]) -> dict[int, PhotoFacts]:
    """What the store knows of these photos' bytes (EXIF date, GPS, camera, size)."""
    ids, out = list(photo_ids), {}
    for start in range(0, len(ids), _CHUNK):
        for p in session.scalars(select(Photo).where(Photo.id.in_(ids[start : start + _CHUNK]))):
            out[p.id] = PhotoFacts(p.content_hash, p.size, p.width, p.height, p.taken_at,
                                   p.camera_make, p.camera_model, p.lens, p.gps_latitude,
                                   p.gps_longitude)
    return out


def drop_orphan_vectors(session: Session) -> list[int]:
    """Vectors of photos with no file left leave the store (their captions stay, should a file
    come back); returns their ids, for the vector index."""
    orphans = list(session.scalars(
        select(Vector.id).where(Vector.photo_id.not_in(select(File.photo_id)))))
    for start in range(0, len(orphans), _CHUNK):
        session.execute(delete(Vector).where(Vector.id.in_(orphans[start : start + _CHUNK])))
    return orphans
