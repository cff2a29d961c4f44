"""Text in photos on the read path: the OCR snippet a result shows (the line closest to the query)."""

from __future__ import annotations

import re

_WORD = re.compile(r"\w+")


def snippet(text: str, query: str, width: int = 160) -> str | None:
    """The line of `text` sharing most words with `query` (the first line if none does),
    cut to about `width` characters around the first shared word; None for no text."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        return None
    wanted = {w.lower() for w in _WORD.findall(query)}

    def shared(line: str) -> int:
        return len(wanted & {w.lower() for w in _WORD.findall(line)})

    best = max(lines, key=shared)  # max keeps the first of equals: reading order
    if len(best) <= width:
        return best
    first = next((m.start() for m in _WORD.finditer(best) if m.group().lower() in wanted), 0)
    start = max(0, min(first - width // 3, len(best) - width))
    cut = best[start : start + width]
    return ("…" if start else "") + cut + ("…" if start + width < len(best) else "")
