"""Citations in an LLM's answer: `[#ID]` of photos it was shown stay, any other id is removed
(and so do control characters).

Works on a stream: a piece that may be the start of a citation (`[`, `[#4`, `[#4, #`) is held
back until it is complete, so a reader never sees a citation that will be removed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

#: One citation group: "[#12]", "[#12, #13]", "[# 12; 13]".
_GROUP = re.compile(r"\[\s*#\s*\d+(?:\s*[,;]\s*#?\s*\d+)*\s*\]")
#: What a citation group may look like before it is complete.
_OPENING = re.compile(r"\[\s*(?:#\s*\d*(?:\s*[,;]\s*#?\s*\d*)*\s*)?")
_DIGITS = re.compile(r"\d+")
#: Longest text held back waiting for a citation to complete.
_MAX_HELD = 120
#: Control characters other than tab and newline: an answer is shown in terminals, and a
#: model (or a server posing as one) must not move the cursor or recolour the screen.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


class CitationFilter:
    """Feed it an answer piece by piece; it returns what can be shown, citations cleaned.

    A removed citation takes the spaces before it along ("the beach [#99]." → "the beach.");
    kept ones are written one id per bracket ("[#3, #5]" → "[#3][#5]"). `cited` lists the ids
    kept, in order of first citation.
    """

    def __init__(self, allowed: Iterable[int]) -> None:
        self.allowed = set(allowed)
        self.cited: list[int] = []
        self.removed: list[int] = []
        self._held = ""  # unprocessed text: the possible start of a citation
        self._spaces = ""  # spaces written but not yet shown: a removed citation drops them

    def feed(self, text: str) -> str:
        self._held += _CONTROL.sub("", text)
        return self._drain(final=False)

    def finish(self) -> str:
        """The rest, at the end of the answer (trailing spaces dropped)."""
        out = self._drain(final=True)
        self._spaces = ""
        return out

    def _drain(self, final: bool) -> str:
        out: list[str] = []
        text, i = self._held, 0
        while True:
            start = text.find("[", i)
            if start < 0:
                out.append(self._plain(text[i:]))
                i = len(text)
                break
            out.append(self._plain(text[i:start]))
            group = _GROUP.match(text, start)
            if group:
                out.append(self._citation(group.group()))
                i = group.end()
                continue
            opening = _OPENING.match(text, start)
            if (not final and opening and opening.end() == len(text)
                    and len(text) - start <= _MAX_HELD):
                i = start  # may still become a citation: wait for more
                break
            out.append(self._plain("["))
            i = start + 1
        self._held = text[i:]
        return "".join(out)

    def _plain(self, text: str) -> str:
        if not text:
            return ""
        stripped = text.rstrip(" \t")
        if not stripped:
            self._spaces += text
            return ""
        shown = self._spaces + stripped
        self._spaces = text[len(stripped):]
        return shown

    def _citation(self, group: str) -> str:
        # no photo id has more than 19 digits (SQLite's 64-bit integers)
        ids = [int(d) if len(d) <= 19 else -1 for d in _DIGITS.findall(group)]
        kept = []
        for photo_id in ids:
            if photo_id in self.allowed:
                if photo_id not in kept:
                    kept.append(photo_id)
            elif photo_id not in self.removed and photo_id >= 0:
                self.removed.append(photo_id)
        if not kept:
            self._spaces = ""
            return ""
        for photo_id in kept:
            if photo_id not in self.cited:
                self.cited.append(photo_id)
        shown = self._spaces + "".join(f"[#{photo_id}]" for photo_id in kept)
        self._spaces = ""
        return shown


def clean_answer(answer: str, allowed: Iterable[int]) -> tuple[str, list[int]]:
    """(the answer with only allowed citations, the ids it cites)."""
    citations = CitationFilter(allowed)
    text = citations.feed(answer) + citations.finish()
    return text.strip(), citations.cited
