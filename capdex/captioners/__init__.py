"""Captioning models behind one interface (`Captioner.caption_batch`), chosen by name."""

from capdex.captioners.base import (
    Captioner,
    CaptionerError,
    MissingDependencyError,
    ModelNotInstalledError,
    QuestionsNotSupported,
)
from capdex.captioners.registry import captioner_class, create, names, register

__all__ = [
    "Captioner",
    "CaptionerError",
    "MissingDependencyError",
    "ModelNotInstalledError",
    "QuestionsNotSupported",
    "captioner_class",
    "create",
    "names",
    "register",
]
