"""Vision LLMs over HTTP: Ollama's `/api/chat` (`ollama`), any OpenAI-compatible
`/v1/chat/completions` (`openai`) and Anthropic's Messages API `/v1/messages` (`anthropic`).

Every failure ends as a CaptionerError that names the endpoint: a refused connection, a timeout,
an error answer or an answer of the wrong shape. Timeouts, retries and error messages are
`capdex.http_json`'s, shared with the ask LLM. API keys come only from the settings (the
environment) and are never put in a message.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from capdex import http_json
from capdex.captioners import catalog, chat_cleanup, vision_llm
from capdex.captioners.base import Captioner, CaptionerError, ModelSpec
from capdex.captioners.lifecycle import require

if TYPE_CHECKING:
    from PIL import Image

    from capdex.settings import Settings

RETRY_STATUS = http_json.RETRY_STATUS


class _HttpCaptioner(Captioner):
    batch_size: ClassVar[int] = 4
    path: ClassVar[str]

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        spec = catalog.get(self.name)
        self.endpoint = (settings.captioner_endpoint or spec.default_endpoint or "").rstrip("/")
        self.model = settings.captioner_model or spec.default_model or ""
        self._client: Any = None

    @property
    def url(self) -> str:
        return self.endpoint + self.path

    @property
    def version(self) -> str:
        return (
            f"{self.name}:{self.model};prompt={vision_llm.prompt_tag(self.settings)};"
            f"max={self.settings.llm_max_tokens};temperature=0;clean={chat_cleanup.VERSION}"
        )

    def headers(self) -> dict[str, str]:
        return {}

    def request_body(self, image: Image.Image, prompt: str | None = None,
                     max_tokens: int | None = None) -> dict[str, Any]:
        """The chat for `image`: the caption instruction, or `prompt` (a question)."""
        raise NotImplementedError

    def answer_text(self, body: Any) -> str | None:
        raise NotImplementedError

    answers_questions: ClassVar[bool] = True

    def caption_batch(self, images: Sequence[Image.Image]) -> list[str]:
        return [self._caption_one(image) for image in images]

    def answer(self, image: Image.Image, question: str) -> str:
        body = self._post(self.request_body(image, vision_llm.question_prompt(question),
                                            self.settings.ask_max_tokens))
        return vision_llm.clean_answer(self._text(body), self.settings)

    def _caption_one(self, image: Image.Image) -> str:
        return chat_cleanup.clean_caption(self._text(self._post(self.request_body(image))))

    def _text(self, body: Any) -> str:
        try:
            text = self.answer_text(body)
        except (KeyError, IndexError, TypeError) as exc:
            raise CaptionerError(
                f"{self.url} answered in an unexpected shape ({exc!r}): {str(body)[:200]}"
            ) from None
        if not isinstance(text, str):
            raise CaptionerError(f"{self.url} answered without text: {str(body)[:200]}")
        return text

    def _post(self, payload: dict[str, Any]) -> Any:
        require("httpx", "http")
        headers = self.headers()
        if self._client is None:
            import httpx

            self._client = httpx.Client(timeout=self.settings.captioner_timeout)
        s = self.settings
        retry = http_json.Retry(s.captioner_timeout, s.captioner_retries, s.captioner_retry_backoff)
        try:
            return http_json.post_json(self._client, self.url, payload, headers, retry,
                                       f"{self.name} endpoint")
        except http_json.EndpointError as exc:
            raise CaptionerError(str(exc)) from None

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


class OllamaCaptioner(_HttpCaptioner):
    name: ClassVar[str] = "ollama"
    spec: ClassVar[ModelSpec] = ModelSpec(
        "http",
        "Any vision model served by Ollama (/api/chat).",
        extra="http",
        default_endpoint="http://127.0.0.1:11434",
        default_model="llava",
    )
    path: ClassVar[str] = "/api/chat"

    def request_body(self, image: Image.Image, prompt: str | None = None,
                     max_tokens: int | None = None) -> dict[str, Any]:
        s = self.settings
        prompt, max_tokens = prompt or vision_llm.prompt(s), max_tokens or s.llm_max_tokens
        return {
            "model": self.model,
            "stream": False,
            "messages": [
                {
                    "role": "user",
                    "content": prompt,
                    "images": [vision_llm.jpeg_base64(image, s.captioner_image_max_side)],
                }
            ],
            "options": {"temperature": 0, "num_predict": max_tokens},
        }

    def answer_text(self, body: Any) -> str:
        return body["message"]["content"]


class OpenAICaptioner(_HttpCaptioner):
    name: ClassVar[str] = "openai"
    spec: ClassVar[ModelSpec] = ModelSpec(
        "http",
        "Any OpenAI-compatible /v1/chat/completions endpoint with image input.",
        extra="http",
        default_endpoint="https://api.openai.com/v1",
        default_model="gpt-4o-mini",
    )

    @property
    def url(self) -> str:
        # Accept both "https://host" and "https://host/v1" as the endpoint.
        base = self.endpoint if self.endpoint.endswith("/v1") else self.endpoint + "/v1"
        return base + "/chat/completions"

    def headers(self) -> dict[str, str]:
        key = self.settings.openai_api_key
        return {"Authorization": f"Bearer {key.get_secret_value()}"} if key else {}

    def request_body(self, image: Image.Image, prompt: str | None = None,
                     max_tokens: int | None = None) -> dict[str, Any]:
        s = self.settings
        prompt, max_tokens = prompt or vision_llm.prompt(s), max_tokens or s.llm_max_tokens
        return {
            "model": self.model,
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": prompt},
                        {
                            "type": "image_url",
                            "image_url": {
                                "url": vision_llm.data_url(image, s.captioner_image_max_side)
                            },
                        },
                    ],
                }
            ],
            "max_tokens": max_tokens,
            "temperature": 0,
        }

    def answer_text(self, body: Any) -> str:
        return body["choices"][0]["message"]["content"]


class AnthropicCaptioner(_HttpCaptioner):
    """Claude: the image as a base64 content block before the instruction, as Anthropic advises."""

    name: ClassVar[str] = "anthropic"
    spec: ClassVar[ModelSpec] = ModelSpec(
        "http",
        "Claude through Anthropic's Messages API (/v1/messages); key from ANTHROPIC_API_KEY.",
        extra="http",
        default_endpoint="https://api.anthropic.com",
        default_model="claude-sonnet-4-5",
    )
    #: The Messages API version the request and answer shapes follow.
    api_version: ClassVar[str] = "2023-06-01"

    @property
    def url(self) -> str:
        base = self.endpoint if self.endpoint.endswith("/v1") else self.endpoint + "/v1"
        return base + "/messages"

    def headers(self) -> dict[str, str]:
        headers = {"anthropic-version": self.api_version}
        key = self.settings.anthropic_api_key
        if key is not None and key.get_secret_value():
            headers["x-api-key"] = key.get_secret_value()
        elif self.endpoint == catalog.get(self.name).default_endpoint:
            # A gateway at another endpoint may authenticate its own way; Anthropic never does.
            raise CaptionerError(
                f"{self.name} needs an API key for {self.url}: set ANTHROPIC_API_KEY (or "
                f"CAPDEX_ANTHROPIC_API_KEY) in the environment"
            )
        return headers

    def request_body(self, image: Image.Image, prompt: str | None = None,
                     max_tokens: int | None = None) -> dict[str, Any]:
        s = self.settings
        prompt, max_tokens = prompt or vision_llm.prompt(s), max_tokens or s.llm_max_tokens
        return {
            "model": self.model,
            "max_tokens": max_tokens,
            "temperature": 0,
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {
                            "type": "image",
                            "source": {
                                "type": "base64",
                                "media_type": "image/jpeg",
                                "data": vision_llm.jpeg_base64(image, s.captioner_image_max_side),
                            },
                        },
                        {"type": "text", "text": prompt},
                    ],
                }
            ],
        }

    def answer_text(self, body: Any) -> str | None:
        texts = [block["text"] for block in body["content"] if block.get("type") == "text"]
        return "".join(texts) if texts else None
