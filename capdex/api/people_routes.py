"""People and faces over HTTP (issue 14): list, name, merge, move a face, a face's crop.

JSON shapes are the issue's: `{"people": [{"id", "name", "faces", "photos"}]}` and so on; extra
fields (`cover_face`: a face id whose thumbnail shows the person) are welcome additions.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Request
from fastapi.responses import Response
from PIL import Image
from pydantic import BaseModel, Field

from capdex.api import people, photo_routes
from capdex.api.schemas import FaceOut
from capdex.image_cache import CacheKind, cached_path, is_cached, write_cached
from capdex.settings import Settings

router = APIRouter(tags=["people"])

Id = Annotated[int, Path(ge=1, le=photo_routes.MAX_ID)]
#: Face crops, made on demand from a 1600-px decode and kept by content hash and face id.
FACE_CROPS = CacheKind("face-crops", quality=85, method=4, resample=Image.Resampling.LANCZOS,
                       durable=False)
CROP_SIDE = 160


class PersonOut(BaseModel):
    id: int
    name: str | None = Field(description="null until someone names them.")
    faces: int
    photos: int
    cover_face: int | None = Field(default=None, description="A face id to show them by.")


class PeopleOut(BaseModel):
    people: list[PersonOut]


class PersonPhoto(BaseModel):
    id: int
    path: str | None
    caption: str | None


class PersonPhotosOut(BaseModel):
    person: PersonOut
    results: list[PersonPhoto]


class NameIn(BaseModel):
    name: str | None = Field(max_length=200, description='The name ("" or null: unnamed).')


class MergeIn(BaseModel):
    into: int = Field(ge=1, le=photo_routes.MAX_ID,
                      description="The person who keeps the faces (and their name).")


class FaceIn(BaseModel):
    person_id: int | None = Field(
        ge=1, le=photo_routes.MAX_ID, description="The person this face is (null: nobody, \"not "
                                  "this person\"); the machine never moves it again.")


def _call(action: Any, *args: Any) -> Any:
    try:
        return action(*args)
    except people.NotFound as exc:
        raise HTTPException(404, str(exc)) from exc
    except people.PeopleError as exc:
        raise HTTPException(422, str(exc)) from exc


@router.get("/api/people", response_model=PeopleOut)
def list_people(request: Request) -> PeopleOut:
    """Everyone found in the photos, most faces first; unnamed people have name null."""
    return PeopleOut.model_validate({"people": people.list_people(request.app.state.db)})


@router.get("/api/people/{person_id}/photos", response_model=PersonPhotosOut)
def person_photos(request: Request, person_id: Id) -> PersonPhotosOut:
    return PersonPhotosOut.model_validate(_call(people.person_photos, request.app.state.db,
                                                person_id))


@router.put("/api/people/{person_id}", response_model=PersonOut)
def name_person(request: Request, person_id: Id, body: NameIn) -> PersonOut:
    """Name a person: search finds their photos by the name at once."""
    return PersonOut.model_validate(_call(people.name, request.app.state.db, person_id,
                                          body.name))


@router.post("/api/people/{person_id}/merge", response_model=PersonOut)
def merge_people(request: Request, person_id: Id, body: MergeIn) -> PersonOut:
    """Move every face of this person to `into` and delete this one."""
    return PersonOut.model_validate(_call(people.merge, request.app.state.db, person_id,
                                          body.into))


@router.put("/api/faces/{face_id}", response_model=FaceOut)
def move_face(request: Request, face_id: Id, body: FaceIn) -> FaceOut:
    return FaceOut.model_validate(_call(people.assign, request.app.state.db, face_id,
                                        body.person_id))


@router.get("/api/faces/{face_id}/thumbnail", response_class=Response,
            responses={200: {"content": {"image/webp": {}}}})
def face_thumbnail(request: Request, face_id: Id) -> Response:
    """The face, cropped with a margin, at most 160 pixels a side (WebP, cached)."""
    settings: Settings = request.app.state.settings
    found = _call(people.face, request.app.state.db, face_id)
    photo = photo_routes.photo_or_404(request, found["photo_id"])
    key = f"{photo.content_hash}-{face_id}"
    photo_routes.image_maker(request).make(
        f"face-{key}", lambda: is_cached(settings, FACE_CROPS, key),
        lambda: write_cached(settings, FACE_CROPS, key, _crop(
            photo_routes.decode_indexed(request, photo, photo_routes.PREVIEW_SIZE),
            found["box"], face_id), CROP_SIDE))
    return photo_routes.cached_image(request, cached_path(settings, FACE_CROPS, key),
                                     f"{key[:32]}-{face_id}-f{CROP_SIDE}", "image/webp")


def _crop(image: Image.Image, box: list[float], face_id: int) -> Image.Image:
    """The face with a quarter of its size as margin on each side (within the photo)."""
    width, height = image.size
    x, y, w, h = box
    margin = 0.25
    crop = (max(0, int((x - w * margin) * width)), max(0, int((y - h * margin) * height)),
            min(width, int((x + w * (1 + margin)) * width)),
            min(height, int((y + h * (1 + margin)) * height)))
    if crop[2] <= crop[0] or crop[3] <= crop[1]:
        raise HTTPException(404, f"face {face_id} has an empty box")
    return image.crop(crop)
