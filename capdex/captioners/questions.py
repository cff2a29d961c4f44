"""Questions about one photo ("what does the sign say?") go to a captioner that takes a prompt:
which ones can, and the one to use."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from capdex.captioners import registry
from capdex.captioners.base import Captioner, QuestionsNotSupported

if TYPE_CHECKING:
    from capdex.settings import Settings

log = logging.getLogger(__name__)


def answering_captioners() -> list[str]:
    """The names of the captioners that can answer questions about a photo, sorted."""
    names = []
    for name in registry.names():
        try:
            cls = registry.captioner_class(name)
        except Exception as exc:  # noqa: BLE001 - a broken plugin must not hide the others
            log.debug("captioner %s cannot be imported: %s", name, exc)
            continue
        if getattr(cls, "answers_questions", False):
            names.append(name)
    return names


def answerer(name: str, settings: Settings) -> Captioner:
    """A new captioner named `name` that answers questions; QuestionsNotSupported (naming those
    that can) when it takes no prompt; CaptionerError when there is no such captioner."""
    cls = registry.captioner_class(name)
    if not getattr(cls, "answers_questions", False):
        raise QuestionsNotSupported(
            f"the {name} captioner cannot answer questions about a photo (it takes no prompt); "
            f"captioners that can: {', '.join(answering_captioners())}")
    return cls(settings)
