"""BLIP-2 (`blip2`): a frozen image encoder and language model bridged by a Q-Former, laid out
like `Salesforce/blip2-opt-2.7b`. With `CAPTION_PROMPT` the caption continues (or answers) the
prompt, and only the model's own words are kept.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from capdex.captioners.base import ModelSpec
from capdex.captioners.transformers_base import (
    GB,
    HUB_PATTERNS,
    WEIGHTS,
    Loaded,
    TransformersCaptioner,
    strip_prompt,
)

if TYPE_CHECKING:
    from PIL import Image


class Blip2Captioner(TransformersCaptioner):
    name: ClassVar[str] = "blip2"
    spec: ClassVar[ModelSpec] = ModelSpec(
        "transformers",
        "BLIP-2 (ViT-g + Q-Former + OPT-2.7b), through transformers; optional prompt.",
        extra="transformers",
        folder="blip2",
        required=("config.json", "*processor_config.json", "tokenizer_config.json", WEIGHTS),
        hub_id="Salesforce/blip2-opt-2.7b",
        allow_patterns=HUB_PATTERNS,
        download_size=int(15.5 * GB),
    )
    batch_size: ClassVar[int] = 4
    input_size: ClassVar[int | None] = 224
    default_beams: ClassVar[int] = 3

    def load(self, loaded: Loaded, folder: Path) -> None:
        transformers = loaded.transformers
        processor = transformers.Blip2Processor.from_pretrained(folder, local_files_only=True)
        model = transformers.Blip2ForConditionalGeneration.from_pretrained(
            folder, local_files_only=True, dtype=loaded.dtype
        )
        _expand_image_tokens(processor, model)
        loaded.processor, loaded.model = processor, model

    def generate(self, loaded: Loaded, images: list[Image.Image]) -> list[str]:
        # Always pass text (empty without a prompt): the processor then puts the query-token
        # placeholders and BOS in front, exactly as generate() would on its own.
        inputs = loaded.processor(
            images=images, text=[self.prompt] * len(images), return_tensors="pt"
        )
        output = loaded.model.generate(**loaded.pixels(inputs), **self.generation)
        if not loaded.model.config.use_decoder_only_language_model:
            new_tokens = output  # T5: the decoder output holds only new words
        else:
            new_tokens = output[:, inputs["input_ids"].shape[1] :]  # OPT repeats its input
        texts = loaded.processor.batch_decode(new_tokens, skip_special_tokens=True)
        return [strip_prompt(text, self.prompt) for text in texts]


def _expand_image_tokens(processor: Any, model: Any) -> None:
    """Snapshots saved before transformers expanded BLIP-2's image tokens in the processor lack
    `num_query_tokens` (processor) and `image_token_index` (config); fill them in so that the
    query outputs land on the `<image>` placeholders the processor writes."""
    config = model.config
    if getattr(processor, "num_query_tokens", None) is None:
        processor.num_query_tokens = config.num_query_tokens
    if config.image_token_index is None:
        tokenizer = processor.tokenizer
        token = processor.image_token
        token_id = tokenizer.convert_tokens_to_ids(getattr(token, "content", token))
        if token_id >= model.get_input_embeddings().num_embeddings:
            model.resize_token_embeddings(len(tokenizer))
        config.image_token_index = token_id
