"""Watching folders: file events from watchdog, grouped into debounced batches of paths to rescan.

The watcher only says *where* something changed. What changed is decided by the same scan →
plan → resolve → commit code as a full run, limited to those paths (`Indexer.run_scopes`), so
watch mode and `capdex index` can never disagree.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING

from capdex.settings import IMAGE_EXTENSIONS
from capdex.indexer.scan import SIDECAR_EXTENSION, is_image_name

if TYPE_CHECKING:
    from watchdog.observers.api import BaseObserver

log = logging.getLogger(__name__)

#: Event kinds that say nothing changed (reads, including the indexer's own).
_IGNORED_EVENTS = frozenset({"opened", "closed_no_write"})


class WatchError(RuntimeError):
    """The folders cannot be watched; the message says what to do."""


class ChangeWatcher:
    """Collects changed paths (OS form) under `roots` until `next_batch` takes them."""

    def __init__(self, roots: Iterable[str], exclude: Iterable[str] = (), poll: bool = False,
                 poll_interval: float = 2.0) -> None:
        self.roots = [os.path.abspath(r) for r in roots]
        self.exclude = [os.path.abspath(e) for e in exclude]
        self.poll = poll
        self.poll_interval = poll_interval
        self._pending: dict[str, float] = {}
        self._first_at: float | None = None
        self._last_at = 0.0
        self._changed = threading.Condition()
        self._observer: BaseObserver | None = None

    # -- lifecycle --------------------------------------------------------------------------------
    def __enter__(self) -> ChangeWatcher:
        from watchdog.events import FileSystemEvent, FileSystemEventHandler
        from watchdog.observers import Observer
        from watchdog.observers.polling import PollingObserver

        watcher = self

        class Handler(FileSystemEventHandler):
            def on_any_event(self, event: FileSystemEvent) -> None:
                if event.event_type in _IGNORED_EVENTS:
                    return
                if event.is_directory and event.event_type == "modified":
                    return  # a file inside was added or removed: that file has its own event
                paths = [event.src_path, getattr(event, "dest_path", "") or ""]
                for path in paths:
                    if path:
                        watcher._note(os.fsdecode(path), event.is_directory)

        observer = PollingObserver(timeout=self.poll_interval) if self.poll else Observer()
        for root in self.roots:
            observer.schedule(Handler(), root if os.path.isdir(root) else os.path.dirname(root),
                              recursive=True)
        try:
            observer.start()
        except OSError as exc:
            raise WatchError(
                f"cannot watch {', '.join(self.roots)}: {exc}. With very many folders, raise "
                "fs.inotify.max_user_watches, or use --poll (also needed on network shares, "
                "where changes made by other machines raise no events)"
            ) from exc
        self._observer = observer
        return self

    def __exit__(self, *exc: object) -> None:
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(timeout=10)
            self._observer = None

    # -- events -----------------------------------------------------------------------------------
    def _note(self, path: str, is_directory: bool) -> None:
        if not self._relevant(path, is_directory):
            return
        now = time.monotonic()
        with self._changed:
            self._pending[path] = now
            self._first_at = self._first_at or now
            self._last_at = now
            self._changed.notify_all()

    def _relevant(self, path: str, is_directory: bool) -> bool:
        path = os.path.abspath(path)
        if any(path == e or path.startswith(e.rstrip(os.sep) + os.sep) for e in self.exclude):
            return False  # e.g. our own thumbnails, if the data dir is inside a root
        root = next((r for r in self.roots
                     if path == r or path.startswith(r.rstrip(os.sep) + os.sep)), None)
        if root is None:
            return False
        folders = os.path.relpath(os.path.dirname(path), root).split(os.sep)
        if any(part.startswith(".") and part not in (".", "..") for part in folders):
            return False  # the scan skips hidden folders too
        name = os.path.basename(path)
        if is_directory:
            return not name.startswith(".") or path == root
        return is_image_name(name) or name.lower().endswith(SIDECAR_EXTENSION)

    def next_batch(self, stop: threading.Event, debounce: float, max_delay: float) -> list[str]:
        """Wait for changed paths; return them once quiet for `debounce` seconds (or once the
        first is `max_delay` old). Returns [] when `stop` is set."""
        with self._changed:
            while not stop.is_set():
                now = time.monotonic()
                if self._pending:
                    quiet = now - self._last_at >= debounce
                    overdue = self._first_at is not None and now - self._first_at >= max_delay
                    if quiet or overdue:
                        paths = sorted(self._pending)
                        self._pending.clear()
                        self._first_at = None
                        return paths
                    wait = min(debounce - (now - self._last_at), 0.2)
                else:
                    wait = 0.2
                self._changed.wait(max(wait, 0.01))
        return []


def scopes_for(paths: Iterable[str], extensions: frozenset[str] = IMAGE_EXTENSIONS) -> list[str]:
    """The smallest set of paths to rescan for these changed paths (OS form, sorted).

    A sidecar stands for its image(s); a path inside another changed folder is covered by it.
    """
    wanted: set[str] = set()
    for path in paths:
        if path.lower().endswith(SIDECAR_EXTENSION) and not os.path.isdir(path):
            wanted.update(_images_of_sidecar(path, extensions))
        else:
            wanted.add(os.path.abspath(path))
    scopes: list[str] = []
    for path in sorted(wanted):
        if any(path.startswith(s.rstrip(os.sep) + os.sep) for s in scopes):
            continue
        scopes.append(path)
    return scopes


def _images_of_sidecar(sidecar: str, extensions: frozenset[str]) -> list[str]:
    """`IMG.jpg.xmp` belongs to `IMG.jpg`; `IMG.xmp` to every image named `IMG.*` beside it."""
    base = sidecar[: -len(SIDECAR_EXTENSION)]
    if is_image_name(base, extensions):
        return [os.path.abspath(base)]
    folder, stem = os.path.split(base)
    try:
        names = os.listdir(folder or ".")
    except OSError:
        return []
    return [os.path.abspath(os.path.join(folder, n)) for n in names
            if is_image_name(n, extensions) and os.path.splitext(n)[0].lower() == stem.lower()]
