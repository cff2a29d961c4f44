"""Captioners by name: built-ins, entry-point plugins and anything registered at run time.

Built-ins are recorded as "module:Class" strings so that choosing one imports only its module:
listing captioners never imports torch or transformers.
"""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points
from typing import TYPE_CHECKING

from capdex.captioners.base import Captioner, CaptionerError

if TYPE_CHECKING:
    from capdex.settings import Settings

ENTRY_POINT_GROUP = "capdex.captioners"

_BUILTINS: dict[str, str] = {
    "tagger": "capdex.captioners.tagger:TaggerCaptioner",
    "im2txt": "capdex.captioners.im2txt.captioner:Im2txtCaptioner",
    "im2txt-onnx": "capdex.captioners.im2txt.captioner:Im2txtOnnxCaptioner",
    "blip-base": "capdex.captioners.blip:BlipCaptioner",
    "blip-large": "capdex.captioners.blip:BlipLargeCaptioner",
    "vit-gpt2": "capdex.captioners.vit_gpt2:VitGpt2Captioner",
    "blip2": "capdex.captioners.blip2:Blip2Captioner",
    "hf-vlm": "capdex.captioners.hf_vlm:HfVlmCaptioner",
    "moondream2": "capdex.captioners.moondream:MoondreamCaptioner",
    "ollama": "capdex.captioners.http:OllamaCaptioner",
    "openai": "capdex.captioners.http:OpenAICaptioner",
    "anthropic": "capdex.captioners.http:AnthropicCaptioner",
}
_registered: dict[str, type[Captioner] | str] = dict(_BUILTINS)
_plugins_loaded = False


def register(cls: type[Captioner]) -> type[Captioner]:
    """Class decorator: make `cls` available under `cls.name` (replacing any earlier one)."""
    if not getattr(cls, "name", None):
        raise TypeError(f"{cls.__qualname__} has no `name`")
    _registered[cls.name] = cls
    return cls


def unregister(name: str) -> None:
    """Remove a captioner; built-ins come back on the next `reset()`."""
    _registered.pop(name, None)


def reset() -> None:
    """Forget run-time registrations (tests use this)."""
    global _plugins_loaded
    _registered.clear()
    _registered.update(_BUILTINS)
    _plugins_loaded = False


def _load_plugins() -> None:
    global _plugins_loaded
    if _plugins_loaded:
        return
    _plugins_loaded = True
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        _registered.setdefault(ep.name, ep.value)


def names() -> list[str]:
    """Every captioner name that can be chosen, sorted."""
    _load_plugins()
    return sorted(_registered)


def captioner_class(name: str) -> type[Captioner]:
    """The class behind `name`, importing its module on first use."""
    _load_plugins()
    target = _registered.get(name)
    if target is None:
        raise CaptionerError(
            f"unknown captioner {name!r}; choose one of: {', '.join(names())}"
        )
    if isinstance(target, str):
        module_name, _, attr = target.partition(":")
        target = getattr(importlib.import_module(module_name), attr)
        _registered[name] = target
    return target


def create(name: str, settings: Settings) -> Captioner:
    """A new, not yet loaded captioner named `name`."""
    return captioner_class(name)(settings)
