"""A full disk is the machine's problem, never a photo's: recognised wherever it surfaces, it
stops the run with one message and blames no photo (issue 20, point 5).

Before, the tagger's weight cache failing to write recorded every photo as failed (kept failed
until `--retry-failed`), and the run ended in a raw `database or disk is full` traceback.
"""

from __future__ import annotations

import errno

#: errno values that mean "no room to write".
_FULL_ERRNOS = frozenset({errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)})
#: How databases and libraries word it when the errno is lost on the way.
_FULL_WORDS = ("database or disk is full", "no space left on device", "disk quota exceeded")
#: PostgreSQL's SQLSTATE for disk_full.
_PG_DISK_FULL = "53100"


class DiskFull(Exception):
    """The run stopped because a disk (the data dir's, a model cache's) is full."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__(
            f"the disk is full ({_describe(cause)}); the run stopped, and no photo was marked "
            "as failed for it. Free some space, then run the same command again: it carries on "
            "where this run stopped, nothing committed is lost")


def is_disk_full(exc: BaseException) -> bool:
    """Whether `exc`, or an exception it was raised from or during, says the disk is full."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, DiskFull):
            return True
        if isinstance(current, OSError) and current.errno in _FULL_ERRNOS:
            return True
        if getattr(current, "sqlstate", None) == _PG_DISK_FULL or \
                getattr(current, "pgcode", None) == _PG_DISK_FULL:
            return True
        if any(words in str(current).lower() for words in _FULL_WORDS):
            return True
        current = getattr(current, "orig", None) or current.__cause__ or current.__context__
    return False


def _describe(exc: BaseException) -> str:
    """The innermost message, short (e.g. "[Errno 28] No space left on device: '/x'")."""
    inner: BaseException = exc
    while getattr(inner, "orig", None) is not None or inner.__cause__ is not None:
        inner = getattr(inner, "orig", None) or inner.__cause__  # type: ignore[assignment]
    text = str(inner).splitlines()[0] if str(inner) else type(inner).__name__
    return text if len(text) <= 200 else text[:199] + "…"
