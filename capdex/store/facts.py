"""What is known about a photo, in one record: caption, the text it shows, when, with what camera,
where and who. Ask puts these before the LLM; this is the one place that gathers them.

Place and people are the words the place and faces stages add (`photo_words` kinds "place" and
"people"); they are None until a stage has written them. A stage that keeps richer facts (a
place's name apart from its country, people's names apart from unnamed faces) is read here.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from capdex.store import repo, words
from capdex.store.models import Photo

if TYPE_CHECKING:
    from capdex.store.db import Database

_CHUNK = 500


@dataclass(frozen=True)
class PhotoFacts:
    id: int
    path: str | None
    caption: str | None
    caption_source: str | None
    #: The text the photo shows (OCR), None when it shows none or OCR has not run.
    text: str | None
    taken_at: datetime | None
    camera: str | None
    place: str | None = None
    people: str | None = None


def photo_facts(db: Database, photo_ids: Iterable[int]) -> dict[int, PhotoFacts]:
    """{id: facts} for those of `photo_ids` that exist."""
    ids = list(dict.fromkeys(photo_ids))
    out: dict[int, PhotoFacts] = {}
    with db.read() as session:
        for start in range(0, len(ids), _CHUNK):
            chunk = ids[start : start + _CHUNK]
            photos = session.scalars(
                select(Photo).where(Photo.id.in_(chunk))
                .options(selectinload(Photo.files), selectinload(Photo.captions),
                         selectinload(Photo.ocr))).all()
            added = words.words_of(session, chunk)
            for photo in photos:
                caption = repo.effective_caption(photo.captions)
                extra = added.get(photo.id, {})
                camera = " ".join(x for x in (photo.camera_make, photo.camera_model) if x)
                out[photo.id] = PhotoFacts(
                    id=photo.id, path=repo.first_path(photo),
                    caption=caption.text if caption else None,
                    caption_source=caption.source if caption else None,
                    text=(photo.ocr.text or None) if photo.ocr else None,
                    taken_at=photo.taken_at, camera=camera or None,
                    place=extra.get("place") or None, people=extra.get("people") or None)
    return out
