"""Chat LLMs over HTTP, for answering questions from the photo library (`capdex ask`).

`chat_client(settings)` picks the protocol and endpoint from the settings (`CAPDEX_LLM`,
`CAPDEX_LLM_ENDPOINT`, `CAPDEX_LLM_MODEL`, `CAPDEX_LLM_API_KEY`) or says what to set.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from capdex.llm.client import ChatAnswer, ChatClient, ChatStream, LLMError, LLMNotConfigured
from capdex.llm.protocols import PROTOCOLS

if TYPE_CHECKING:
    from capdex.settings import Settings

__all__ = ["ChatAnswer", "ChatClient", "ChatStream", "LLMError", "LLMNotConfigured",
           "PROTOCOLS", "chat_client", "NOT_CONFIGURED"]

NOT_CONFIGURED = (
    "no LLM is configured to answer questions: set CAPDEX_LLM_ENDPOINT to an OpenAI-compatible "
    "server (llama.cpp's `python -m llama_cpp.server`, vLLM, ...), or CAPDEX_LLM=ollama for a "
    "local Ollama, and CAPDEX_LLM_MODEL (see the README, \"Ask\")"
)


def chat_client(settings: Settings) -> ChatClient:
    """The LLM the settings describe; LLMNotConfigured when they describe none."""
    protocol = settings.llm or ("openai" if settings.llm_endpoint else None)
    if protocol is None:
        raise LLMNotConfigured(NOT_CONFIGURED)
    cls = PROTOCOLS[protocol]
    endpoint = settings.llm_endpoint or cls.default_endpoint
    if not endpoint:
        raise LLMNotConfigured(NOT_CONFIGURED)
    key = settings.llm_api_key
    if key is None:  # the key the captioners of the same protocol use
        key = {"openai": settings.openai_api_key,
               "anthropic": settings.anthropic_api_key}.get(protocol)
    secret = key.get_secret_value() if key is not None else None
    if not secret and settings.llm_endpoint is None and protocol != "ollama":
        # The public APIs always need a key; a gateway or local server may not.
        raise LLMNotConfigured(
            f"the {protocol} LLM at {endpoint} needs an API key: set CAPDEX_LLM_API_KEY, or "
            f"set CAPDEX_LLM_ENDPOINT to a server of your own")
    return cls(settings, endpoint, settings.llm_model, secret or None)
