"""What an indexing stage is: one job over a batch of decoded photos, with its own version.

The write path (docs/indexing.md): scan → plan → read → decode → stages → embed → commit. A
stage is one file in `capdex/indexer/stages/` plus one line in that package's `STAGES`. What a
stage says, and what the pipeline does with it:

- `name` and `version`. A stored photo whose results of this stage are missing or of another
  version is *pending* (`pending`): the next run does this stage alone on it — a new OCR engine
  redoes OCR, never captioning; a stage added to an existing library runs once on every photo.
- `size`: the image it looks at (a `SizeHint`), or None when it needs no pixels (a place stage
  reads the EXIF GPS and date the decode already read, or the store has). A photo is read once
  and decoded once, at the largest size among the stages that run on it; each stage gets its
  own view of that decode (`prepare`, run in the decode threads). A stage that needs more
  pixels for some photos only (OCR where its gate saw text) asks `StageInput.larger(size)`:
  the same bytes decoded again, larger, in the stage's own thread.
- `worker`: False — `run` is called in the model thread and its results are committed with the
  batch (the caption). True — its own worker thread (OCR): it overlaps decoding and captioning,
  and no photo waits for it to become searchable by its caption. Results ready before their
  batch is committed go into that commit; later ones are committed on their own, and the photo
  is embedded again only if its text changed. A worker that falls far behind (its queue holds
  `flow.WORKER_BUDGET` bytes of views) gets the photos it could not take after the rest of the
  run, decoded again for it alone: the model never waits for a worker.
- `run(inputs)`: one result per input, computed without touching the store. When it raises,
  the pipeline runs the photos one by one (`capdex.indexer.isolate`) so only a bad image
  fails; an exception in `fatal` (the model cannot run at all) stops the run instead.
- `write(session, photo_id, result, version)`: store one result in the commit's transaction
  (`version`: the version that made it — the local stage's, or a Spark executor's). Words for
  search go through `capdex.store.words`; embedded words join the photo's vector text, and the
  commit embeds every photo whose text changed (`capdex.indexer.embed`).
- `required`: a new photo is stored only when this stage succeeded on it (the caption). Any
  other stage's failure is logged and counted; the stage stays pending for that photo, so the
  next run tries again.

Results are plain JSON-able data (str, dict, list, numbers), so a Spark executor can ship
them in its Parquet result and `capdex import` writes them with the same `write`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from PIL import Image
    from sqlalchemy.orm import Session

    from capdex.images import SizeHint
    from capdex.indexer.metadata import PhotoMetadata
    from capdex.settings import Settings


@dataclass
class StageInput:
    """One photo as a stage sees it."""

    #: The file read, in stored form.
    path: str
    #: The stored photo; None for new content (stored by the commit, if the required stages
    #: succeed).
    photo_id: int | None
    #: What the stage's `prepare` made of the decoded image (None when its `size` is None).
    view: Any
    #: EXIF facts (date taken, GPS, camera): from the decode for new content, else the store's.
    metadata: PhotoMetadata | None
    #: The same bytes decoded again at a larger size (for stages that need more pixels for
    #: some photos only); raises `capdex.images.ImageLoadError`.
    larger: Callable[[SizeHint], Image.Image]


class Stage(ABC):
    """One job of an index run; see the module docstring for the contract."""

    name: ClassVar[str]
    #: Run in its own worker thread (True) or in the model thread before the batch commit.
    worker: ClassVar[bool] = False
    #: A new photo is stored only when this stage succeeded on it.
    required: ClassVar[bool] = False

    @property
    def enlarges(self) -> bool:
        """May call `StageInput.larger`: the photo's bytes are kept in memory until it ran."""
        return False

    #: Kinds of words (`capdex.store.words`) this stage writes.
    word_kinds: ClassVar[tuple[str, ...]] = ()
    #: Exceptions meaning the stage cannot run at all: they stop the run (nothing is recorded
    #: as a broken photo because of them).
    fatal: ClassVar[tuple[type[BaseException], ...]] = ()

    @classmethod
    @abstractmethod
    def create(cls, settings: Settings, options: Mapping[str, Any]) -> Stage | None:
        """The stage for this run, or None when it is off. `options` are the Indexer's keyword
        arguments (e.g. `captioner=`, `ocr=False`, `ocr_engine=`, `recaption=True`)."""

    @property
    @abstractmethod
    def version(self) -> str:
        """Recorded with its results; results of another version are pending again."""

    @property
    def size(self) -> SizeHint | None:
        """The least image this stage needs (None: no pixels)."""
        return None

    def check(self) -> None:
        """Raise (an error people can act on) when the stage cannot run here; cheap, loads
        no model. Called before a run changes anything."""

    def warm_up(self) -> None:
        """Load models now (in a background thread, while files are read)."""

    def pending(self, session: Session) -> list[int]:
        """Ids of stored photos (with a file) whose results are missing or stale, in id order."""
        return []

    def prepare(self, image: Image.Image) -> Any:
        """Per-photo work done in the decode threads (crop, resize); the result is
        `StageInput.view`. The default keeps the image as decoded."""
        return image

    @abstractmethod
    def run(self, inputs: Sequence[StageInput]) -> list[Any]:
        """One JSON-able result per input, in order; no store access."""

    @abstractmethod
    def write(self, session: Session, photo_id: int, result: Any, version: str) -> None:
        """Store one result in the commit's transaction."""

    def tally(self, summary: Any, result: Any) -> None:
        """Count one stored result in the run's `IndexSummary` (e.g. OCR: photos with text)."""

    def describe_failure(self, exc: BaseException) -> str:
        """The reason recorded (or logged) when this stage fails on one photo."""
        return f"{self.name} failed: {exc}"

    def close(self) -> None:
        """Free models at the end of a run."""
