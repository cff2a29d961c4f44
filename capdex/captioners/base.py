"""The one interface every captioning model implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    from PIL import Image

    from capdex.settings import Settings


class CaptionerError(RuntimeError):
    """A captioner could not run; the message says what to do about it."""


class ModelNotInstalledError(CaptionerError):
    """The model's files are not on disk; the message says how to install them."""


class MissingDependencyError(CaptionerError):
    """An optional Python package is not installed; the message names the extra to install."""


class QuestionsNotSupported(CaptionerError):
    """This captioner takes no prompt, so it cannot answer a question about a photo."""


class Captioner(ABC):
    """Captions a batch of RGB PIL images.

    Subclasses set `name`, `version` and `batch_size` and implement `caption_batch`. They must load
    heavy models lazily (on first use, not in `__init__`) so that listing or choosing a captioner
    is cheap, and release them in `close`.
    """

    name: ClassVar[str]

    @property
    def version(self) -> str:
        """Bumped whenever captions from the same weights would change; recorded with each
        caption. A subclass sets it (`version = "2"`), or, with downloadable weights, makes it a
        property naming the weights and the settings that change the words: read it from an
        instance."""
        return "1"

    #: Preferred number of images per `caption_batch` call.
    batch_size: ClassVar[int] = 8
    #: Square side (pixels) the model looks at; decoders may shrink images to about this size.
    input_size: ClassVar[int | None] = None
    #: True for models that take a prompt (vision LLMs), which implement `answer`.
    answers_questions: ClassVar[bool] = False

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @abstractmethod
    def caption_batch(self, images: Sequence[Image.Image]) -> list[str]:
        """Return one caption per image, in order (images or what `prepare` made of them)."""

    def prepare(self, image: Image.Image) -> object:
        """Per-image work (cropping, resizing) done ahead in the indexer's decode threads, so
        the model's thread only runs the model; `caption_batch` accepts the result in place of
        the image. The default does nothing."""
        return image

    def warm_up(self) -> None:
        """Load the model now rather than on the first batch (the indexer calls it in a
        background thread while files are hashed). Errors surface again on first use."""

    def caption(self, image: Image.Image) -> str:
        """Caption a single image."""
        return self.caption_batch([image])[0]

    def answer(self, image: Image.Image, question: str) -> str:
        """Answer a question about one image ("what does the sign say?"). Only captioners that
        take a prompt can (`answers_questions`); the others raise QuestionsNotSupported."""
        raise QuestionsNotSupported(f"the {self.name} captioner cannot answer questions about "
                                    f"a photo: it takes no prompt")

    def close(self) -> None:
        """Free the model's memory. The captioner loads it again if used afterwards."""
