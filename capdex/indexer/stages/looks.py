"""The looks stage: what stored photos look like (the captioner's pooled image features, for
similar photos), for photos captioned before capdex kept them.

New photos never need it: the caption stage stores the looks its forward pass gave
(`CaptionStage.run`), so the network runs once per photo. This stage is on when the run's
captioner gives looks (the tagger); it is pending for present photos that captioner captioned
and whose looks of the current model are missing, and catches them up once, without
captioning again. Photos other captioners captioned have none: similar photos then falls back
to caption vectors (`capdex.search.engine`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from capdex.captioners import Captioner, CaptionerError, registry
from capdex.indexer.stage import Stage, StageInput
from capdex.store import captions, looks

if TYPE_CHECKING:
    from PIL import Image
    from sqlalchemy.orm import Session

    from capdex.images import SizeHint
    from capdex.settings import Settings


def gives_looks(captioner: type[Captioner] | Captioner) -> bool:
    """Whether a captioner's forward pass also gives image features (`caption_and_looks`)."""
    return callable(getattr(captioner, "caption_and_looks", None))


class LooksStage(Stage):
    name = "looks"
    fatal = (CaptionerError,)  # the model cannot run: stop, blame no photo

    def __init__(self, settings: Settings, captioner: Captioner | None = None,
                 recaption: bool = False) -> None:
        self.settings = settings
        self._captioner = captioner
        self.recaption = recaption
        self._version: str | None = None

    @classmethod
    def create(cls, settings: Settings, options: Mapping[str, Any]) -> LooksStage | None:
        captioner = options.get("captioner")
        try:
            kind = captioner if captioner is not None else \
                registry.captioner_class(settings.captioner)
        except Exception:  # noqa: BLE001 - an unknown captioner is the caption stage's to report
            return None
        if not gives_looks(kind):
            return None
        return cls(settings, captioner, bool(options.get("recaption")))

    @property
    def captioner(self) -> Captioner:
        # Only stored photos need this stage's own captioner (once per library), so one made
        # here loads its model only when some do.
        if self._captioner is None:
            self._captioner = registry.create(self.settings.captioner, self.settings)
        return self._captioner

    @property
    def version(self) -> str:
        """The looks' model, as the caption stage records it: captioner name and version."""
        if self._version is None:
            self._version = f"{self.captioner.name} {self.captioner.version}"
        return self._version

    @property
    def size(self) -> SizeHint | None:
        side = self.captioner.input_size
        return side if side else self.settings.thumbnail_size

    def pending(self, session: Session) -> list[int]:
        stale = looks.stale_photos(session, self.captioner.name, self.version)
        if self.recaption and stale:  # the caption stage redoes these, looks included
            redone = set(captions.stale_machine_captions(session, self.captioner.name,
                                                         self.captioner.version))
            stale = [photo_id for photo_id in stale if photo_id not in redone]
        return stale

    def prepare(self, image: Image.Image) -> Any:
        # The decode's shared view as it is (no copy): new photos never use it, and the few
        # stored ones are cropped in `run`.
        return image

    def run(self, inputs: Sequence[StageInput]) -> list[Any]:
        stored = [i for i in inputs if i.photo_id is not None]
        seen: dict[int, list[float]] = {}
        if stored:
            views = [self.captioner.prepare(i.view) for i in stored]
            _, features = self.captioner.caption_and_looks(views)  # type: ignore[attr-defined]
            seen = {id(i): v.tolist() for i, v in zip(stored, features, strict=True)}
        # None for new photos: the caption stage stores their looks
        return [seen.get(id(i)) for i in inputs]

    def write(self, session: Session, photo_id: int, result: Any, version: str) -> None:
        if result is not None:
            looks.set_looks(session, photo_id, result, version)

    def describe_failure(self, exc: BaseException) -> str:
        return f"reading what the photo looks like failed ({self.captioner.name}): {exc}"
