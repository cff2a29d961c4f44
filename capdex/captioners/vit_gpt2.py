"""ViT-GPT2 (`vit-gpt2`): a ViT encoder with a GPT-2 decoder (`VisionEncoderDecoderModel`), laid
out like `nlpconnect/vit-gpt2-image-captioning` — the model behind Spark NLP's default captioner.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from capdex.captioners.base import ModelSpec
from capdex.captioners.transformers_base import (
    GB,
    HUB_PATTERNS,
    WEIGHTS,
    Loaded,
    TransformersCaptioner,
)

if TYPE_CHECKING:
    from PIL import Image


class VitGpt2Captioner(TransformersCaptioner):
    name: ClassVar[str] = "vit-gpt2"
    spec: ClassVar[ModelSpec] = ModelSpec(
        "transformers",
        "ViT-GPT2 encoder-decoder captioner (Spark NLP's default), through transformers.",
        extra="transformers",
        folder="vit-gpt2",
        required=("config.json", "preprocessor_config.json", "tokenizer_config.json", WEIGHTS),
        hub_id="nlpconnect/vit-gpt2-image-captioning",
        allow_patterns=HUB_PATTERNS,
        download_size=int(0.98 * GB),
    )
    batch_size: ClassVar[int] = 8
    input_size: ClassVar[int | None] = 224
    default_beams: ClassVar[int] = 4  # as nlpconnect's model card

    def load(self, loaded: Loaded, folder: Path) -> None:
        transformers = loaded.transformers
        loaded.processor = transformers.AutoImageProcessor.from_pretrained(
            folder, local_files_only=True
        )
        loaded.tokenizer = transformers.AutoTokenizer.from_pretrained(folder, local_files_only=True)
        loaded.model = transformers.VisionEncoderDecoderModel.from_pretrained(
            folder, local_files_only=True, dtype=loaded.dtype
        )

    def generate(self, loaded: Loaded, images: list[Image.Image]) -> list[str]:
        inputs = loaded.pixels(loaded.processor(images=images, return_tensors="pt"))
        output = loaded.model.generate(inputs["pixel_values"], **self.generation)
        texts = loaded.tokenizer.batch_decode(output, skip_special_tokens=True)
        return [" ".join(text.split()) for text in texts]
