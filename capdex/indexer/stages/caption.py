"""The caption stage: a captioner's words for each photo (required: a new photo is stored only
with its caption). Stored beside any human caption, which keeps speaking for the photo.

A captioner whose forward pass also gives what the photo looks like (the tagger's
`caption_and_looks`) hands both over at once: the result is then {"caption", "looks"} and the
looks are stored too (`capdex.store.looks`, for similar photos), never a second pass."""

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


class CaptionStage(Stage):
    name = "caption"
    required = True
    fatal = (CaptionerError,)  # not installed, endpoint down: stop, blame no photo

    def __init__(self, settings: Settings, captioner: Captioner | None = None,
                 recaption: bool = False) -> None:
        self.settings = settings
        self._captioner = captioner
        self.recaption = recaption
        self._version: str | None = None

    @classmethod
    def create(cls, settings: Settings, options: Mapping[str, Any]) -> CaptionStage:
        return cls(settings, options.get("captioner"), bool(options.get("recaption")))

    @property
    def captioner(self) -> Captioner:
        if self._captioner is None:
            self._captioner = registry.create(self.settings.captioner, self.settings)
        return self._captioner

    @property
    def version(self) -> str:
        if self._version is None:  # some captioners work it out from their weights' files
            self._version = self.captioner.version
        return self._version

    @property
    def size(self) -> SizeHint | None:
        side = self.captioner.input_size
        return side if side else self.settings.thumbnail_size

    def warm_up(self) -> None:
        self.captioner.warm_up()

    def pending(self, session: Session) -> list[int]:
        """With `--recaption`: photos whose machine caption another captioner or version made
        (and no human caption speaks for). Otherwise captions are never redone."""
        if not self.recaption:
            return []
        return captions.stale_machine_captions(session, self.captioner.name, self.version)

    def prepare(self, image: Image.Image) -> Any:
        return self.captioner.prepare(image)

    @property
    def looks_model(self) -> str | None:
        """What the captioner's image features are recorded as (None: it gives none)."""
        if not callable(getattr(self.captioner, "caption_and_looks", None)):
            return None
        return f"{self.captioner.name} {self.version}"

    def run(self, inputs: Sequence[StageInput]) -> list[Any]:
        views = [i.view for i in inputs]
        if self.looks_model is None:
            return [str(t) for t in self.captioner.caption_batch(views)]
        texts, seen = self.captioner.caption_and_looks(views)  # type: ignore[attr-defined]
        return [{"caption": str(t), "looks": v.tolist()} for t, v in zip(texts, seen, strict=True)]

    def write(self, session: Session, photo_id: int, result: Any, version: str) -> None:
        captions.set_machine_caption(session, photo_id, caption_text(result), self.captioner.name,
                                     version)
        if isinstance(result, dict) and result.get("looks") is not None:
            looks.set_looks(session, photo_id, result["looks"],
                            f"{self.captioner.name} {version}")

    def tally(self, summary: Any, result: Any) -> None:
        summary.captioned += 1

    def describe_failure(self, exc: BaseException) -> str:
        return f"captioning failed ({self.captioner.name}): {exc}"

    def close(self) -> None:
        pass  # the captioner belongs to whoever made it (the CLI, a job)


def caption_text(result: Any) -> str:
    """The caption in a caption stage result (a string, or {"caption", "looks"})."""
    return str(result["caption"]) if isinstance(result, dict) else str(result)
