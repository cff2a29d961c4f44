"""Search filters as SQL: which photos a request may return (date taken, folder, camera,
whether it shows text, who is in it, place, season)."""

from __future__ import annotations

from sqlalchemy import ColumnElement, Select, SQLColumnExpression, and_, func, select

from capdex.paths import under
from capdex.search.request import SearchRequest
from capdex.store import places, words
from capdex.store.models import File, OcrText, Photo
from capdex.store.people import person_photos


def folder_condition(column: SQLColumnExpression[str], folder: str) -> ColumnElement[bool]:
    """`column` (a path) is `folder` itself or inside it — "/a/b" does not match "/a/bc" —
    comparing exactly, case included (`capdex.paths.under`, as the indexer does)."""
    return under(column, folder)


def allowed_photos(request: SearchRequest) -> Select | None:
    """A select of the ids of photos (with a file) that pass the request's filters; None when
    the request has no filters."""
    if not request.filtered:
        return None
    conditions = []
    if request.taken_after:
        conditions.append(Photo.taken_at >= request.taken_after.start)
    if request.taken_before:
        bound = request.taken_before
        conditions.append(Photo.taken_at < bound.end if bound.whole_day
                          else Photo.taken_at <= bound.end)
    if request.camera:
        camera = func.lower(func.coalesce(Photo.camera_make, "") + " "
                            + func.coalesce(Photo.camera_model, ""))
        conditions.append(camera.contains(request.camera.lower(), autoescape=True))
    if request.has_text is not None:
        shows = select(OcrText.photo_id).where(OcrText.text != "")
        conditions.append(Photo.id.in_(shows) if request.has_text else Photo.id.not_in(shows))
    if request.person:
        conditions.append(Photo.id.in_(person_photos(request.person)))
    if request.place:
        conditions.append(Photo.id.in_(places.photos_in(request.place)))
    if request.season:
        conditions.append(Photo.id.in_(words.photos_with_word("time", request.season)))
    files = select(File.photo_id)
    if request.folder:
        files = files.where(folder_condition(File.path, request.folder))
    conditions.append(Photo.id.in_(files))
    return select(Photo.id).where(and_(*conditions))
