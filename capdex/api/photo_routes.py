"""Photo routes the web page needs beyond search: browsing, a large preview, cached images.

Images are always found by photo id through the database, never by a path from the request.
"""

from __future__ import annotations

from pathlib import Path as FsPath
from typing import TYPE_CHECKING, Annotated

from fastapi import APIRouter, HTTPException, Path, Query, Request
from fastapi.responses import FileResponse, Response
from pydantic import BaseModel, Field

from capdex.api import photos
from capdex.api.photo_files import ImageMaker, decode_slots, read_indexed
from capdex.api.schemas import LocalDateTime
from capdex.image_cache import PREVIEWS, cached_path, is_cached, write_cached
from capdex.images import SizeHint
from capdex.settings import Settings
from capdex.store import repo
from capdex.store.models import Photo

if TYPE_CHECKING:
    from PIL import Image

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


def image_maker(request: Request) -> ImageMaker:
    """The app's one `ImageMaker` (bounded, de-duplicated full decodes)."""
    maker = getattr(request.app.state, "images", None)
    if maker is None:
        settings: Settings = request.app.state.settings
        maker = request.app.state.images = ImageMaker(
            decode_slots(settings.max_image_pixels, settings.preview_decodes))
    return maker


def decode_indexed(request: Request, photo: Photo, size_hint: SizeHint | None) -> Image.Image:
    """The photo upright, decoded (in draft mode where the format allows) from bytes of its
    file checked to be the bytes indexed (`photo_files.read_indexed`), holding a decode slot;
    paths come only from the database. A 404 with the reason when no file qualifies."""
    from capdex.images import ImageLoadError, decode_image

    settings: Settings = request.app.state.settings
    with image_maker(request).decoding():
        path, data = read_indexed(photo, settings.photo_roots)
        try:
            return decode_image(path, max_pixels=settings.max_image_pixels, size_hint=size_hint,
                                data=data).image
        except ImageLoadError as exc:
            raise HTTPException(404, f"photo {photo.id} cannot be read: {exc}") from exc


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
    content_hash = photo.content_hash
    image_maker(request).make(
        f"preview-{content_hash}", lambda: is_cached(settings, PREVIEWS, content_hash),
        lambda: write_cached(settings, PREVIEWS, content_hash,
                             decode_indexed(request, photo, PREVIEW_SIZE), PREVIEW_SIZE))
    path = cached_path(settings, PREVIEWS, content_hash)
    return cached_image(request, path, f"{content_hash[:32]}-p{PREVIEW_SIZE}", "image/webp")
