"""What the vision-LLM captioners (Moondream, hf-vlm, Ollama, OpenAI-compatible, Anthropic)
share: the prompt, its tag in version strings, and the bounded JPEG an image is sent as. Turning
their chatty answers into captions is `captioners.chat_cleanup`."""

from __future__ import annotations

import base64
import hashlib
import io
import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from PIL import Image

    from capdex.settings import Settings

JPEG_QUALITY = 90


def prompt(settings: Settings) -> str:
    return settings.llm_prompt.strip()


def question_prompt(question: str) -> str:
    """The instruction for a question about one photo (`Captioner.answer`)."""
    return f"{question.strip()}\nAnswer from what this photo shows, in a sentence or two."


def clean_answer(text: str, settings: Settings) -> str:
    """A model's answer to a question, trimmed, without control characters (it may be shown in
    a terminal) and no longer than answers may be."""
    text = re.sub(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]", "", text)
    return text.strip()[: settings.ask_max_answer_chars]


def prompt_tag(settings: Settings) -> str:
    """A short, stable name for the prompt, for captions' version strings."""
    return hashlib.sha256(prompt(settings).encode()).hexdigest()[:8]


def bounded(image: Image.Image, max_side: int) -> Image.Image:
    """`image` in RGB, shrunk (never enlarged) to at most `max_side` on its longer side."""
    from PIL import Image

    image = image.convert("RGB")
    if max(image.size) > max_side:
        image = image.copy()
        image.thumbnail((max_side, max_side), Image.Resampling.LANCZOS, reducing_gap=3.0)
    return image


def jpeg_bytes(image: Image.Image, max_side: int) -> bytes:
    """`image` as an RGB JPEG no larger than `max_side` on its longer side."""
    image = bounded(image, max_side)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=JPEG_QUALITY)
    return buffer.getvalue()


def jpeg_base64(image: Image.Image, max_side: int) -> str:
    return base64.b64encode(jpeg_bytes(image, max_side)).decode("ascii")


def data_url(image: Image.Image, max_side: int) -> str:
    return "data:image/jpeg;base64," + jpeg_base64(image, max_side)
