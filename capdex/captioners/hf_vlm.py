"""Any transformers image-text-to-text chat model (`hf-vlm`): LLaVA 1.5/1.6, Qwen2-VL, SmolVLM,
Idefics and the like, loaded with `AutoModelForImageTextToText` + `AutoProcessor` and prompted
through the model's own chat template.

The model is `CAPDEX_CAPTIONER_MODEL` (a hub id, downloaded into `models/hf-vlm/org--name`) or a
folder (`--model-path`). A model that ships its own Python code only loads with
`CAPDEX_HF_VLM_TRUST_REMOTE_CODE=1`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from capdex.captioners import catalog, chat_cleanup, vision_llm
from pydantic import Field

from capdex.captioners.base import CaptionerError, CaptionerOptions, ModelSpec
from capdex.captioners.lifecycle import require
from capdex.captioners.transformers_base import (
    HUB_PATTERNS,
    WEIGHTS,
    Loaded,
    TransformersCaptioner,
)

if TYPE_CHECKING:
    from PIL import Image

#: Images are shrunk to this before the processor sees them: dynamic-resolution models (Qwen2-VL,
#: SmolVLM's tiling) would otherwise turn a 12-megapixel photo into thousands of tokens.
IMAGE_MAX_SIDE = 768


class HfVlmOptions(CaptionerOptions):
    """CAPDEX_HF_VLM_TRUST_REMOTE_CODE (or the older CAPDEX_TRUST_REMOTE_CODE)."""

    trust_remote_code: bool = Field(default=False, json_schema_extra={"env": [
        "CAPDEX_TRUST_REMOTE_CODE"]}, description="Let a model run the Python code it ships "
        "(download and load); only for models you trust.")


class HfVlmCaptioner(TransformersCaptioner):
    name: ClassVar[str] = "hf-vlm"
    spec: ClassVar[ModelSpec] = ModelSpec(
        "transformers",
        "Any transformers image-text-to-text chat model (LLaVA, Qwen2-VL, SmolVLM...), "
        "chosen with CAPDEX_CAPTIONER_MODEL (hub id) or --model-path.",
        extra="vlm",
        folder="hf-vlm",
        required=("config.json", WEIGHTS),
        hub_id="HuggingFaceTB/SmolVLM-256M-Instruct",
        allow_patterns=HUB_PATTERNS,
        choosable=True,
    )
    batch_size: ClassVar[int] = 4
    input_size: ClassVar[int | None] = IMAGE_MAX_SIDE
    Options = HfVlmOptions
    options: HfVlmOptions

    @property
    def model_label(self) -> str:
        return catalog.model_label(self.name, self.settings)

    def words_settings(self) -> str:
        s = self.settings
        return (
            f"prompt={vision_llm.prompt_tag(s)};max={s.llm_max_tokens};greedy;"
            f"side={IMAGE_MAX_SIDE};clean={chat_cleanup.VERSION}"
        )

    @property
    def version(self) -> str:
        return f"{self.name}:{self.model_label}@{self.weights};{self.dtype};{self.words_settings()}"

    def messages(self, prompt: str | None = None) -> list[dict[str, Any]]:
        """One user turn: the photo, then the instruction (the order the model cards use)."""
        return [
            {
                "role": "user",
                "content": [
                    {"type": "image"},
                    {"type": "text", "text": prompt or vision_llm.prompt(self.settings)},
                ],
            }
        ]

    def load(self, loaded: Loaded, folder: Path) -> None:
        require("jinja2", self.spec.extra or "vlm")  # chat templates are Jinja; transformers imports it late
        transformers = loaded.transformers
        trust = self.options.trust_remote_code
        try:
            processor = transformers.AutoProcessor.from_pretrained(
                folder, local_files_only=True, trust_remote_code=trust
            )
            model = transformers.AutoModelForImageTextToText.from_pretrained(
                folder, local_files_only=True, trust_remote_code=trust, dtype=loaded.dtype
            )
        except ValueError as exc:
            if "trust_remote_code" in str(exc) and not trust:
                raise CaptionerError(
                    f"{folder} holds a model that needs its own Python code to load; if you "
                    f"trust where it came from, set CAPDEX_HF_VLM_TRUST_REMOTE_CODE=1 (and download "
                    f"it again with that set, so its code is fetched too)"
                ) from exc
            raise
        tokenizer = getattr(processor, "tokenizer", None)
        if tokenizer is None:
            raise CaptionerError(f"{folder} has no tokenizer: hf-vlm needs a chat model")
        try:
            processor.apply_chat_template(self.messages(), add_generation_prompt=True)
        except ValueError as exc:
            raise CaptionerError(
                f"{folder} has no chat template ({exc}); hf-vlm needs an instruction-tuned "
                f"image-text-to-text model such as {catalog.get(self.name).hub_id}"
            ) from exc
        # Decoder-only models continue the last token: pad batches on the left.
        tokenizer.padding_side = "left"
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        loaded.processor, loaded.model, loaded.tokenizer = processor, model, tokenizer

    answers_questions: ClassVar[bool] = True

    def generate(self, loaded: Loaded, images: list[Image.Image]) -> list[str]:
        texts = self._chat(loaded, images, vision_llm.prompt(self.settings),
                           self.settings.llm_max_tokens)
        return [chat_cleanup.clean_caption(text) for text in texts]

    def answer(self, image: Image.Image, question: str) -> str:
        s = self.settings
        with self._model.use() as loaded, loaded.torch.inference_mode():
            (text,) = self._chat(loaded, [image], vision_llm.question_prompt(question),
                                 s.ask_max_tokens)
        return vision_llm.clean_answer(text, s)

    def _chat(self, loaded: Loaded, images: list[Image.Image], prompt: str,
              max_new_tokens: int) -> list[str]:
        """The model's replies (greedy) to `prompt` about each image."""
        processor, tokenizer = loaded.processor, loaded.tokenizer
        text = processor.apply_chat_template(self.messages(prompt), add_generation_prompt=True)
        # Templates that write BOS themselves must not get a second one from the tokenizer.
        bos = tokenizer.bos_token
        inputs = processor(
            text=[text] * len(images),
            images=[[vision_llm.bounded(image, IMAGE_MAX_SIDE)] for image in images],
            padding=True,
            add_special_tokens=not (bos and text.startswith(bos)),
            return_tensors="pt",
        )
        output = loaded.model.generate(
            **loaded.pixels(inputs),
            max_new_tokens=max_new_tokens,
            do_sample=False,
            num_beams=1,
            pad_token_id=tokenizer.pad_token_id,
        )
        new_tokens = output[:, inputs["input_ids"].shape[1] :]
        return tokenizer.batch_decode(new_tokens, skip_special_tokens=True)
