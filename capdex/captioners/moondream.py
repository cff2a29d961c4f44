"""Moondream 2 (`moondream2`): a small vision LLM, run on the CPU by llama.cpp.

The model folder holds the GGUF text model (`*text-model*.gguf`) and the vision projector
(`*mmproj*.gguf`) that llama-cpp-python's `MoondreamChatHandler` loads.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from capdex.captioners import catalog, chat_cleanup, vision_llm
from pydantic import Field

from capdex.captioners.base import Captioner, CaptionerError, CaptionerOptions, ModelSpec
from capdex.captioners.lifecycle import ModelHandle, require

if TYPE_CHECKING:
    from pathlib import Path

    from PIL import Image

    from capdex.settings import Settings

#: Moondream's vision encoder sees 378x378 crops; twice that keeps detail without wasting time.
IMAGE_MAX_SIDE = 756


class MoondreamOptions(CaptionerOptions):
    """CAPDEX_MOONDREAM2_THREADS and _CONTEXT (or the older CAPDEX_LLM_THREADS, _CONTEXT)."""

    threads: int | None = Field(default=None, ge=1, json_schema_extra={"env": [
        "CAPDEX_LLM_THREADS"]}, description="llama.cpp threads; default: the number of cores.")
    context: int = Field(default=2048, ge=512, le=32768, json_schema_extra={"env": [
        "CAPDEX_LLM_CONTEXT"]}, description="llama.cpp context, in tokens.")


class MoondreamCaptioner(Captioner):
    name: ClassVar[str] = "moondream2"
    spec: ClassVar[ModelSpec] = ModelSpec(
        "llama.cpp",
        "Moondream 2 vision LLM (GGUF text model + vision projector) via llama-cpp-python.",
        extra="moondream",
        folder="moondream2",
        required=("*text-model*.gguf", "*mmproj*.gguf"),
        hub_id="moondream/moondream2-gguf",
        revision="66f21bff432b523f311e72d4e34cf1925ae75210",
        allow_patterns=("*text-model*.gguf", "*mmproj*.gguf"),
    )
    batch_size: ClassVar[int] = 1  # llama.cpp answers one chat at a time
    input_size: ClassVar[int | None] = 378
    Options = MoondreamOptions
    options: MoondreamOptions

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self._model: ModelHandle[Any] = ModelHandle(
            self.name, self._load, release=_close_llama, idle_ttl=settings.model_idle_ttl
        )

    @property
    def threads(self) -> int:
        return self.options.threads or os.cpu_count() or 1

    @property
    def version(self) -> str:
        weights = catalog.weights_identity(self.name, self.settings)
        return (
            f"{self.name}@{weights};prompt={vision_llm.prompt_tag(self.settings)};"
            f"max={self.settings.llm_max_tokens};greedy;clean={chat_cleanup.VERSION}"
        )

    def chat_handler(self, projector: Path) -> Any:
        """The llama-cpp-python chat handler that feeds images through the vision projector."""
        from llama_cpp.llama_chat_format import MoondreamChatHandler

        return MoondreamChatHandler(clip_model_path=str(projector), verbose=False)

    def _load(self) -> Any:
        llama_cpp = require("llama_cpp", "moondream", package="llama-cpp-python")
        folder = catalog.require_installed(self.name, self.settings)
        text_model = catalog.find(folder, "*text-model*.gguf")
        projector = catalog.find(folder, "*mmproj*.gguf")
        assert text_model is not None and projector is not None  # require_installed checked
        try:
            return llama_cpp.Llama(
                model_path=str(text_model),
                chat_handler=self.chat_handler(projector),
                n_ctx=self.options.context,
                n_threads=self.threads,
                n_threads_batch=self.threads,
                n_gpu_layers=0,
                seed=0,
                verbose=False,
            )
        except (ValueError, RuntimeError, OSError) as exc:
            raise CaptionerError(f"llama.cpp cannot load {text_model}: {exc}") from exc

    answers_questions: ClassVar[bool] = True

    def caption_batch(self, images: Sequence[Image.Image]) -> list[str]:
        s = self.settings
        with self._model.use() as llm:
            return [chat_cleanup.clean_caption(
                        self._chat(llm, image, vision_llm.prompt(s), s.llm_max_tokens))
                    for image in images]

    def answer(self, image: Image.Image, question: str) -> str:
        s = self.settings
        with self._model.use() as llm:
            text = self._chat(llm, image, vision_llm.question_prompt(question), s.ask_max_tokens)
        return vision_llm.clean_answer(text, s)

    def _chat(self, llm: Any, image: Image.Image, prompt: str, max_tokens: int) -> str:
        """One turn: the photo, then `prompt`; the model's reply (greedy)."""
        url = vision_llm.data_url(image, IMAGE_MAX_SIDE)
        messages = [
            {
                "role": "user",
                "content": [
                    {"type": "image_url", "image_url": {"url": url}},
                    {"type": "text", "text": prompt},
                ],
            }
        ]
        try:
            answer = llm.create_chat_completion(
                messages=messages, max_tokens=max_tokens, temperature=0.0, seed=0
            )
        except (ValueError, RuntimeError) as exc:
            raise CaptionerError(f"Moondream failed on an image: {exc}") from exc
        return answer["choices"][0]["message"]["content"] or ""

    def warm_up(self) -> None:
        with self._model.use():
            pass

    def close(self) -> None:
        self._model.unload()


def _close_llama(llm: Any) -> None:
    close = getattr(llm, "close", None)
    if close is not None:
        close()
