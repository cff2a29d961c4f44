"""The faces stage: faces found in each photo, described and grouped into people (issue 14).

Off unless asked for (`--faces`, CAPDEX_FACES=true): it needs the `faces` extra, and it costs
~0.1 s a photo plus ~0.08 s a face on one core (docs/people.md). It runs in its own worker thread
like OCR, so no photo waits for it to become searchable by its caption. Its version names the
engine, dlib, the weights and the detection size: a photo is pending until the faces stage of
this version has looked at it, so a new version finds faces again without captioning again, and
a stopped run carries on where it stopped. Results are plain data, so a Spark executor or
`capdex import` writes them with the same `write`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from capdex.captioners.faces import FaceEngine, FacesUnavailable, shared_engine
from capdex.indexer import people as grouping
from capdex.indexer.stage import Stage, StageInput
from capdex.store import people as people_store

if TYPE_CHECKING:
    from PIL import Image
    from sqlalchemy.orm import Session

    from capdex.images import SizeHint
    from capdex.settings import Settings


class FacesStage(Stage):
    name = "faces"
    worker = True
    word_kinds = ("people",)
    fatal = (FacesUnavailable,)  # not installed or the models do not load: stop the run

    def __init__(self, settings: Settings, engine: FaceEngine | None = None) -> None:
        self.settings = settings
        self.engine = engine or shared_engine()

    @classmethod
    def create(cls, settings: Settings, options: Mapping[str, Any]) -> FacesStage | None:
        on = options.get("faces")
        if not (settings.faces if on is None else on):
            return None
        return cls(settings, options.get("face_engine"))

    @property
    def version(self) -> str:
        return self.engine.version

    @property
    def size(self) -> SizeHint | None:
        return (1, self.engine.detect_side)  # the long side only: detection runs small

    def check(self) -> None:
        self.engine.check_installed()

    def warm_up(self) -> None:
        self.engine.load()

    def pending(self, session: Session) -> list[int]:
        return people_store.stale_photos(session, self.version)

    def prepare(self, image: Image.Image) -> Any:
        return self.engine.fit(image)

    def run(self, inputs: Sequence[StageInput]) -> list[Any]:
        self.engine.load()  # FacesUnavailable (fatal) here, not per photo
        return [[face.as_dict() for face in self.engine.find(item.view)] for item in inputs]

    def write(self, session: Session, photo_id: int, result: Any, version: str) -> None:
        added = people_store.replace_faces(session, photo_id, result, version)
        grouping.group_new_faces(session, added)

    def describe_failure(self, exc: BaseException) -> str:
        return f"finding faces failed: {exc}"

    def tally(self, summary: Any, result: Any) -> None:
        summary.faces_scanned += 1
        summary.faces_found += len(result)
