"""How heavy models live in a process: loaded lazily under a lock, one large model at a time,
unloaded after sitting idle. Every captioner with real weights holds its model in a `ModelHandle`.

One process-wide lock guards loading, using and unloading every handle. Two large models could
not share 2 cores usefully anyway, and a single lock cannot deadlock: eviction of the previous
model, the idle timer and `close()` all wait for whatever inference is running.
"""

from __future__ import annotations

import gc
import importlib
import logging
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import ModuleType
from typing import Generic, TypeVar

from capdex.captioners.base import MissingDependencyError

log = logging.getLogger(__name__)

T = TypeVar("T")

_LOCK = threading.RLock()
_active_large: weakref.ReferenceType[ModelHandle] | None = None


class ModelHandle(Generic[T]):
    """One model: `load()` runs on first `use()`; `release(model)` frees it on unload."""

    def __init__(
        self,
        name: str,
        load: Callable[[], T],
        *,
        release: Callable[[T], None] | None = None,
        idle_ttl: float = 0.0,
        large: bool = True,
    ) -> None:
        self.name = name
        self._load = load
        self._release = release
        self.idle_ttl = idle_ttl
        self.large = large
        self._model: T | None = None
        self._timer: threading.Timer | None = None
        self._last_used = 0.0
        self.loads = 0  # how many times the model was actually loaded (tests and logs)

    @property
    def loaded(self) -> bool:
        return self._model is not None

    @contextmanager
    def use(self) -> Iterator[T]:
        """The loaded model, held exclusively for the duration of the block."""
        global _active_large
        with _LOCK:
            self._cancel_timer()
            if self._model is None:
                if self.large:
                    previous = _active_large() if _active_large is not None else None
                    if previous is not None and previous is not self:
                        log.info("unloading %s to make room for %s", previous.name, self.name)
                        previous.unload()
                started = time.perf_counter()
                self._model = self._load()
                self.loads += 1
                log.info("loaded %s in %.1fs", self.name, time.perf_counter() - started)
                if self.large:
                    _active_large = weakref.ref(self)
            try:
                yield self._model
            finally:
                self._last_used = time.monotonic()
                self._schedule_idle_unload()

    def unload(self) -> None:
        """Free the model now; the next `use()` loads it again."""
        global _active_large
        with _LOCK:
            self._cancel_timer()
            model, self._model = self._model, None
            if _active_large is not None and _active_large() is self:
                _active_large = None
        if model is not None:
            if self._release is not None:
                try:
                    self._release(model)
                except Exception:  # unloading must not fail the caller
                    log.warning("releasing %s failed", self.name, exc_info=True)
            del model
            gc.collect()
            log.info("unloaded %s", self.name)

    def _schedule_idle_unload(self) -> None:
        if self.idle_ttl <= 0:
            return
        self._timer = threading.Timer(self.idle_ttl, self._unload_if_idle)
        self._timer.daemon = True
        self._timer.name = f"capdex-idle-{self.name}"
        self._timer.start()

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _unload_if_idle(self) -> None:
        with _LOCK:
            idle = time.monotonic() - self._last_used
            if self._model is not None and idle >= self.idle_ttl * 0.99:
                self.unload()


def active_large_model() -> str | None:
    """Name of the large model currently in memory, if any."""
    handle = _active_large() if _active_large is not None else None
    return handle.name if handle is not None and handle.loaded else None


def require(module: str, extra: str, *, package: str | None = None) -> ModuleType:
    """Import an optional dependency, or say exactly which extra installs it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependencyError(
            f"this captioner needs the Python package {package or module!r}, which is not "
            f"installed: pip install 'capdex[{extra}]'"
        ) from exc
