"""Benchmarks write their own ratio lines into RESULTS.md, with the machine they ran on, so the
numbers there are the ones a run printed (issue 17)."""

from __future__ import annotations

import time
from pathlib import Path

from benchmarks.machine import describe

RESULTS = Path(__file__).parent / "RESULTS.md"


def record(title: str, lines: list[str], results: Path = RESULTS) -> None:
    """Append a section: `title`, the UTC date, the machine (CPU model, CPUs, load) and `lines`."""
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    text = f"\n### {title} ({stamp})\n\n{describe()}\n\n" + "".join(f"- {line}\n" for line in lines)
    with results.open("a", encoding="utf-8") as f:
        f.write(text)
    print(f"(written to {results})")
