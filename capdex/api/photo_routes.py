"""Photo routes the web page needs beyond search: browsing, a large preview, cached images.

Images are always found by photo id through the database, never by a path from the request.
"""

from __future__ import annotations

import os
from pathlib import Path as FsPath
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query, Request
from fastapi.responses import FileResponse, Response
from pydantic import BaseModel, Field

from capdex.api import photos
from capdex.api.schemas import LocalDateTime
from capdex.image_cache import PREVIEWS, cached_path, write_cached
from capdex.paths import to_fs
from capdex.settings import Settings
from capdex.store import repo
from capdex.store.models import Photo

router = APIRouter(tags=["photos"])

MAX_ID = 2**63 - 1
PhotoId = Annotated[int, Path(ge=1, le=MAX_ID, description="A photo id from search results.")]
PREVIEW_SIZE = 1600
IMAGE_MAX_AGE = 86400


class PhotoListItem(BaseModel):
    id: int
    path: str
    caption: str | None
    caption_source: str | None = None
    captioner: str | None = None
    taken_at: LocalDateTime | None = None


class PhotoListOut(BaseModel):
    total: int = Field(description="Photos with at least one file on record.")
    results: list[PhotoListItem]


def photo_or_404(request: Request, photo_id: int) -> Photo:
    """The photo with its files and captions, or a 404 that says which id was unknown."""
    photo = None
    if 1 <= photo_id <= MAX_ID:  # SQLite integers are 64-bit; larger ids cannot exist
        photo = photos.load_photo(request.app.state.db, photo_id)
    if photo is None:
        raise HTTPException(404, f"no photo with id {photo_id}")
    return photo


def existing_file(photo: Photo) -> str:
    """The first of the photo's files still on disk; paths come only from the database."""
    for file in photo.files:
        if os.path.isfile(to_fs(file.path)):
            return to_fs(file.path)
    raise HTTPException(404, f"photo {photo.id} has no file on disk any more")


def cached_image(request: Request, path: FsPath, etag: str, media_type: str) -> Response:
    """An image response browsers may keep a day and revalidate with If-None-Match.

    With an API key the response is `private`, so no shared cache keeps what needed a key.
    """
    settings: Settings = request.app.state.settings
    scope = "private" if settings.api_key is not None else "public"
    headers = {"Cache-Control": f"{scope}, max-age={IMAGE_MAX_AGE}", "ETag": f'"{etag}"',
               "Vary": "X-API-Key"}
    if etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    return FileResponse(path, media_type=media_type, headers=headers)


@router.get("/api/photos", response_model=PhotoListOut)
def list_photos(
    request: Request,
    limit: Annotated[int, Query(ge=1, le=200)] = 40,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> PhotoListOut:
    """Every indexed photo, newest taken first (undated last): the page's grid before a query."""
    total, page = repo.photos_page(request.app.state.db, limit, offset)
    items = []
    for photo in page:
        caption = repo.effective_caption(photo.captions)
        items.append(PhotoListItem(
            id=photo.id, path=repo.first_path(photo) or "", taken_at=photo.taken_at,
            caption=caption.text if caption else None,
            caption_source=caption.source if caption else None,
            captioner=caption.captioner if caption else None,
        ))
    return PhotoListOut(total=total, results=items)


@router.get("/api/photos/{photo_id}/preview", response_class=FileResponse,
            responses={200: {"content": {"image/webp": {}}}, 404: {"description": "No such photo"
                       " or its file is gone or unreadable."}})
def preview(request: Request, photo_id: PhotoId) -> Response:
    """The photo upright, at most 1600 pixels a side, as WebP (made once, then cached)."""
    settings: Settings = request.app.state.settings
    photo = photo_or_404(request, photo_id)
    path = cached_path(settings, PREVIEWS, photo.content_hash)
    if not path.exists():
        _write_preview(settings, existing_file(photo), path, photo_id)
    return cached_image(request, path, f"{photo.content_hash[:32]}-p{PREVIEW_SIZE}", "image/webp")


def _write_preview(settings: Settings, source: str, path: FsPath, photo_id: int) -> None:
    from capdex.images import ImageLoadError, load_image

    try:
        image = load_image(source, max_pixels=settings.max_image_pixels, size_hint=PREVIEW_SIZE)
    except ImageLoadError as exc:
        raise HTTPException(404, f"photo {photo_id} cannot be read: {exc}") from exc
    content_hash = path.stem
    write_cached(settings, PREVIEWS, content_hash, image, PREVIEW_SIZE)
