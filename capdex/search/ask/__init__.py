"""Ask your photos: answers from the library that cite the photos they come from (issue 16)."""

from capdex.search.ask.asker import (
    Answering,
    AskError,
    AskFailed,
    Asker,
    AskResult,
    AskUnavailable,
)
from capdex.search.ask.citations import CitationFilter, clean_answer
from capdex.search.ask.prompt import Prompt, build_prompt

__all__ = ["Answering", "AskError", "AskFailed", "AskResult", "AskUnavailable", "Asker",
           "CitationFilter", "Prompt", "build_prompt", "clean_answer"]
