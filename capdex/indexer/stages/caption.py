"""The caption stage: a captioner's words for each photo (required: a new photo is stored only
with its caption). Stored beside any human caption, which keeps speaking for the photo."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from capdex.captioners import Captioner, CaptionerError, registry
from capdex.indexer.stage import Stage, StageInput
from capdex.store import captions

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

    def run(self, inputs: Sequence[StageInput]) -> list[Any]:
        return [str(t) for t in self.captioner.caption_batch([i.view for i in inputs])]

    def write(self, session: Session, photo_id: int, result: Any, version: str) -> None:
        captions.set_machine_caption(session, photo_id, str(result), self.captioner.name, version)

    def tally(self, summary: Any, result: Any) -> None:
        summary.captioned += 1

    def describe_failure(self, exc: BaseException) -> str:
        return f"captioning failed ({self.captioner.name}): {exc}"

    def close(self) -> None:
        pass  # the captioner belongs to whoever made it (the CLI, a job)
