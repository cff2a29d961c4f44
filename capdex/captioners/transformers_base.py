"""What the torch captioners with hub weights (BLIP, BLIP-2, ViT-GPT2, hf-vlm) share: the dtype
choice, loading weights and processor once under the model lifecycle, inference mode, and a
version that names the weights and every setting that changes the words. All but BLIP load
through transformers; BLIP runs without it (`needs_transformers`, blip_torch).

Models run in bf16 where the CPU computes it natively (AVX-512 BF16 or AMX), fp32 elsewhere; the
choice is part of the caption's version because it can change the words.
"""

from __future__ import annotations

import functools
import logging
from abc import abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, ClassVar

from capdex.captioners import catalog
from capdex.captioners.base import Captioner, CaptionerError
from capdex.captioners.lifecycle import ModelHandle, require

if TYPE_CHECKING:
    from PIL import Image

    from capdex.settings import Settings

#: Weights in either format transformers reads ("|" separates alternatives).
WEIGHTS = "*.safetensors|pytorch_model*.bin"
#: What a transformers model folder holds besides its weights: configs, tokenizer files (BPE
#: vocab/merges, SentencePiece models) and chat templates.
HUB_PATTERNS = ("*.json", "*.txt", "*.model", "*.jinja", "*.tiktoken", "*.safetensors")
GB = 1_000_000_000


@functools.cache
def cpu_has_native_bf16() -> bool:
    """True where bf16 matmuls run in hardware (x86 AVX-512 BF16 / AMX, Arm BF16)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            flags = set()
            for line in f:
                if line.startswith(("flags", "Features")):
                    flags.update(line.split(":", 1)[1].split())
        if flags & {"avx512_bf16", "amx_bf16", "bf16"}:
            return True
    except OSError:
        pass
    try:
        import torch

        return "AMX" in torch.backends.cpu.get_cpu_capability()
    except Exception:  # noqa: BLE001 - no torch or an old one: assume no bf16
        return False


def resolve_dtype(choice: str) -> str:
    if choice == "auto":
        return "bf16" if cpu_has_native_bf16() else "fp32"
    return choice


@dataclass
class Loaded:
    """A model in memory with what feeds it: a processor (or image processor) and a tokenizer."""

    torch: ModuleType
    transformers: Any  # the module; None where the model runs without it (BLIP)
    dtype: Any  # torch.bfloat16 or torch.float32
    model: Any = None
    processor: Any = None
    tokenizer: Any = None

    def pixels(self, inputs: Any) -> Any:
        """`inputs` with its image tensor in the model's dtype (processors make fp32)."""
        if "pixel_values" in inputs:
            inputs["pixel_values"] = inputs["pixel_values"].to(self.dtype)
        return inputs


class TransformersCaptioner(Captioner):
    """A captioner whose model folder transformers loads; subclasses say how to load and run it."""

    #: The extra that installs what `load` imports: `pip install 'capdex[EXTRA]'`.
    default_beams: ClassVar[int] = 1
    default_min_length: ClassVar[int] = 0
    #: False where `load` builds the model without transformers (BLIP: blip_torch).
    needs_transformers: ClassVar[bool] = True

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.dtype = resolve_dtype(settings.torch_dtype)
        self._model: ModelHandle[Loaded] = ModelHandle(
            self.name, self._load, idle_ttl=settings.model_idle_ttl
        )

    @property
    def folder(self) -> Path | None:
        return catalog.model_dir(self.name, self.settings)

    @property
    def weights(self) -> str:
        """The weights' identity: hub revision, or a digest of a local folder's files."""
        return catalog.weights_identity(self.name, self.settings)

    @property
    def prompt(self) -> str:
        return (self.settings.caption_prompt or "").strip()

    @property
    def generation(self) -> dict[str, Any]:
        """Decoding settings given to `generate` (beam search, lengths in new tokens)."""
        s = self.settings
        return {
            "num_beams": s.caption_beams or self.default_beams,
            "max_new_tokens": s.caption_max_length,
            "min_new_tokens": (
                self.default_min_length if s.caption_min_length is None else s.caption_min_length
            ),
            "do_sample": False,
        }

    def words_settings(self) -> str:
        """The settings that change the words, for the version string."""
        g = self.generation
        prompt = f";prompt={self.prompt!r}" if self.prompt else ""
        return f"beams={g['num_beams']};max={g['max_new_tokens']};min={g['min_new_tokens']}{prompt}"

    @property
    def version(self) -> str:
        return f"{self.name}@{self.weights};{self.dtype};{self.words_settings()}"

    @abstractmethod
    def load(self, loaded: Loaded, folder: Path) -> None:
        """Fill `loaded.model` (and its processor/tokenizer) from `folder`."""

    @abstractmethod
    def generate(self, loaded: Loaded, images: list[Image.Image]) -> list[str]:
        """Captions for `images`; runs under torch.inference_mode with the model held."""

    def _load(self) -> Loaded:
        torch = require("torch", self.spec.extra or "transformers")
        transformers = None
        if self.needs_transformers:
            transformers = require("transformers", self.spec.extra or "transformers")
            _quiet(transformers)
        folder = catalog.require_installed(self.name, self.settings)
        dtype = torch.bfloat16 if self.dtype == "bf16" else torch.float32
        loaded = Loaded(torch, transformers, dtype)
        try:
            self.load(loaded, folder)
        except (OSError, ValueError, KeyError) as exc:
            raise CaptionerError(f"cannot load {self.name} from {folder}: {exc}") from exc
        if isinstance(loaded.model, torch.nn.Module):
            loaded.model.eval()
        return loaded

    def caption_batch(self, images: Sequence[Image.Image]) -> list[str]:
        if not images:
            return []
        with self._model.use() as loaded, loaded.torch.inference_mode():
            return self.generate(loaded, list(images))

    def warm_up(self) -> None:
        with self._model.use():
            pass

    def close(self) -> None:
        self._model.unload()


def _quiet(transformers: ModuleType) -> None:
    """No "Loading weights" bars or load-time warnings on the console (issue 17): the run has
    its own progress line, and they are not the user's business; `-v` (INFO) keeps warnings."""
    transformers.utils.logging.disable_progress_bar()
    if not logging.getLogger().isEnabledFor(logging.INFO):
        transformers.utils.logging.set_verbosity_error()


def strip_prompt(text: str, prompt: str) -> str:
    """`text` with whitespace collapsed, without a leading `prompt` and stray punctuation."""
    text = " ".join(text.split())
    prompt = " ".join(prompt.lower().split())
    if prompt and text.lower().startswith(prompt):
        text = text[len(prompt) :]
    return text.strip(" ,.:;")
