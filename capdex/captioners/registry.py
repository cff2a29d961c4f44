"""Captioners by name: entry points in the `capdex.captioners` group, and run-time registrations.

Built-ins are entry points too, declared in capdex's own pyproject.toml exactly as a plugin
package declares its own, so there is one way in. An entry point is a "module:Class" string
imported on first use: listing names never imports a model's module, let alone torch.
"""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points
from typing import TYPE_CHECKING

from capdex.captioners.base import Captioner, CaptionerError

if TYPE_CHECKING:
    from capdex.settings import Settings

ENTRY_POINT_GROUP = "capdex.captioners"

_registered: dict[str, type[Captioner] | str] = {}
_loaded = False


def register(cls: type[Captioner]) -> type[Captioner]:
    """Class decorator: make `cls` available under `cls.name` (replacing any earlier one)."""
    if not getattr(cls, "name", None):
        raise TypeError(f"{cls.__qualname__} has no `name`")
    _load_entry_points()
    _registered[cls.name] = cls
    return cls


def reset() -> None:
    """Forget run-time registrations (tests use this)."""
    global _loaded
    _registered.clear()
    _loaded = False


def _load_entry_points() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        _registered.setdefault(ep.name, ep.value)


def names() -> list[str]:
    """Every captioner name that can be chosen, sorted."""
    _load_entry_points()
    return sorted(_registered)


def captioner_class(name: str) -> type[Captioner]:
    """The class behind `name`, importing its module on first use."""
    _load_entry_points()
    target = _registered.get(name)
    if target is None:
        hint = "" if "tagger" in _registered else (
            " (capdex's own captioners are missing: its package metadata is stale or absent; "
            "reinstall it, e.g. pip install -e .)")
        raise CaptionerError(
            f"unknown captioner {name!r}; choose one of: {', '.join(names())}{hint}"
        )
    if isinstance(target, str):
        module_name, _, attr = target.partition(":")
        target = getattr(importlib.import_module(module_name), attr)
        _registered[name] = target
    return target


def create(name: str, settings: Settings) -> Captioner:
    """A new, not yet loaded captioner named `name`."""
    return captioner_class(name)(settings)
