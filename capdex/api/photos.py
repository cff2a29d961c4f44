"""One photo as the API and the CLI show it: files, captions and metadata."""

from __future__ import annotations

from capdex.api.schemas import CaptionOut, FaceOut, PhotoOut, PlaceOut
from capdex.store import repo
from capdex.store.people import face_dict
from capdex.store.db import Database
from capdex.store.models import Photo


def load_photo(db: Database, photo_id: int) -> Photo | None:
    return repo.load_photo(db, photo_id)


def photo_out(photo: Photo) -> PhotoOut:
    current = repo.effective_caption(photo.captions)
    return PhotoOut(
        id=photo.id, path=repo.first_path(photo), paths=[f.path for f in photo.files],
        caption=current.text if current else None,
        caption_source=current.source if current else None,
        captions=[CaptionOut(text=c.text, source=c.source, captioner=c.captioner,
                             captioner_version=c.captioner_version, created_at=c.created_at)
                  for c in sorted(photo.captions, key=lambda c: c.source)],
        content_hash=photo.content_hash, size=photo.size, width=photo.width, height=photo.height,
        taken_at=photo.taken_at, camera_make=photo.camera_make, camera_model=photo.camera_model,
        lens=photo.lens, latitude=photo.gps_latitude, longitude=photo.gps_longitude,
        ocr_text=photo.ocr.text if photo.ocr else None,
        ocr_confidence=photo.ocr.confidence if photo.ocr else None,
        ocr_engine=f"{photo.ocr.engine} {photo.ocr.engine_version}" if photo.ocr else None,
        faces=[FaceOut.model_validate(face_dict(f, f.person.name if f.person else None))
               for f in photo.faces],
        place=_place(photo),
    )


def _place(photo: Photo) -> PlaceOut | None:
    """Where the photo was taken, when the place stage named it (loaded with the photo)."""
    row = photo.place
    if row is None or not (row.city or row.region or row.country):
        return None
    return PlaceOut(city=row.city, region=row.region, country=row.country)


def photo_dict(db: Database, photo_id: int) -> dict[str, object]:
    """The photo as JSON-ready data (the API's PhotoOut); raises LookupError if unknown."""
    photo = load_photo(db, photo_id)
    if photo is None:
        raise LookupError(f"no photo with id {photo_id}")
    return photo_out(photo).model_dump(mode="json")
