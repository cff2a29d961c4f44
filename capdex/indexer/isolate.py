"""Bad-image isolation: run a model over a batch; if the batch fails, run its items one by one,
so only the image that breaks the model fails. Used by every stage and by the Spark job."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from capdex.disk_full import DiskFull, is_disk_full

T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True)
class Failed:
    """The result of an item the model failed on; `reason` is what people are shown."""

    reason: str


def isolate(run: Callable[[list[T]], Sequence[R]], items: Sequence[T], *,
            describe: Callable[[BaseException], str],
            fatal: tuple[type[BaseException], ...] = ()) -> list[R | Failed]:
    """`run(items)`, one result per item; where it raises, the items are run alone.

    An exception in `fatal` (the model cannot run at all: not installed, endpoint down), or
    one saying the disk is full (`capdex.disk_full.DiskFull`), is raised, never blamed on an
    image. A wrong number of results counts as a failure of the
    batch. `describe(exc)` words the reason a lone item failed.
    """
    items = list(items)
    if not items:
        return []
    try:
        results = list(run(items))
        if len(results) != len(items):
            raise RuntimeError(f"returned {len(results)} results for {len(items)} items")
        return list(results)
    except fatal:
        raise
    except Exception as exc:  # isolate the item that breaks the model
        if is_disk_full(exc):  # the machine's problem: no image is to blame
            raise DiskFull(exc) from exc
        if len(items) == 1:
            return [Failed(describe(exc))]
        return [isolate(run, [item], describe=describe, fatal=fatal)[0] for item in items]
