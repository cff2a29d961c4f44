"""BLIP image captioning (`blip-base`, `blip-large`), in plain torch without transformers.

The model folder is Salesforce's (as `capdex models download` fetches it); the arithmetic, the
preprocessing and the decoding are transformers' own, written out in `blip_torch` and
`decoding`, so captions are token-identical to `BlipForConditionalGeneration.generate` while
start-up skips transformers' ~3 s import (issue 17).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from capdex.captioners.base import ModelSpec
from capdex.captioners.transformers_base import (  # noqa: F401 - re-exported for older imports
    Loaded,
    TransformersCaptioner,
    cpu_has_native_bf16,
    resolve_dtype,
    strip_prompt,
)

if TYPE_CHECKING:
    from PIL import Image

BLIP_FILES = ("config.json", "*processor_config.json", "tokenizer.json", "*.safetensors")
BLIP_PATTERNS = ("*.json", "vocab.txt", "*.safetensors")
DEFAULT_BEAMS = 3  # as BLIP's own captioning demo
DEFAULT_MIN_LENGTH = 5


class BlipCaptioner(TransformersCaptioner):
    name: ClassVar[str] = "blip-base"
    spec: ClassVar[ModelSpec] = ModelSpec(
        "torch",
        "BLIP image captioning, base (ViT-B).",
        extra="blip",
        folder="blip-base",
        required=BLIP_FILES,
        hub_id="Salesforce/blip-image-captioning-base",
        allow_patterns=BLIP_PATTERNS,
    )
    # per-step costs of generation shrink with the batch: 16 measured 0.25 s/photo vs 0.29 at 8
    batch_size: ClassVar[int] = 16
    input_size: ClassVar[int | None] = 384
    default_beams: ClassVar[int] = DEFAULT_BEAMS
    default_min_length: ClassVar[int] = DEFAULT_MIN_LENGTH
    needs_transformers: ClassVar[bool] = False

    def load(self, loaded: Loaded, folder: Path) -> None:
        from capdex.captioners.blip_torch import Blip, Tokens

        from capdex.settings import default_cache_dir

        loaded.model = Blip(folder, loaded.dtype, cache=default_cache_dir() / "blip")
        loaded.tokenizer = Tokens(folder, loaded.model.config)

    def generate(self, loaded: Loaded, images: list[Image.Image]) -> list[str]:
        from capdex.captioners.decoding import generate

        blip, tokens, g = loaded.model, loaded.tokenizer, self.generation
        beams = g["num_beams"]
        image_embeds = blip.see(blip.images.pixels(images))
        # One decoder row per beam, as transformers expands the image for beam search.
        rows = image_embeds.repeat_interleave(beams, dim=0) if beams > 1 else image_embeds
        ids = generate(
            blip.decoder(rows),
            tokens.prompt(self.prompt, len(images)),
            num_beams=beams,
            max_new_tokens=g["max_new_tokens"],
            min_new_tokens=g["min_new_tokens"],
            eos_token_id=blip.config.sep_token_id,
            pad_token_id=blip.config.pad_token_id,
        )
        return [strip_prompt(text, self.prompt) for text in tokens.decode(ids)]


class BlipLargeCaptioner(BlipCaptioner):
    name: ClassVar[str] = "blip-large"
    spec: ClassVar[ModelSpec] = ModelSpec(
        "torch",
        "BLIP image captioning, large (ViT-L).",
        extra="blip",
        folder="blip-large",
        required=BLIP_FILES,
        hub_id="Salesforce/blip-image-captioning-large",
        allow_patterns=BLIP_PATTERNS,
    )
