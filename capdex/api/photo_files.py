"""Reading a photo's file for the API: only a regular file, under a photo root once resolved,
still holding the bytes that were indexed; and at most a few full decodes at a time.

Issue 20, point 7: `/file` served whatever the stored path pointed at now (an indexed photo
replaced by a symlink to a mode-600 file elsewhere was served). Issue 20, point 10: sixteen
concurrent previews of uncached 120-MP photos took the server to 22.8 of 23 GB.
"""

from __future__ import annotations

import hashlib
import mimetypes
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from fastapi import HTTPException
from fastapi.responses import StreamingResponse

from capdex.paths import to_fs
from capdex.regular_file import open_regular
from capdex.store.models import Photo

CHUNK = 1 << 20
CHANGED = "has no file holding the bytes indexed any more (changed since: index it again)"


@dataclass
class IndexedFile:
    """An open file of a photo, checked to hold the photo's indexed bytes."""

    handle: BinaryIO
    fs_path: str
    size: int


def open_indexed(photo: Photo, roots: list[Path]) -> IndexedFile:
    """The first of the photo's files that is a regular file, lies under one of `roots` once
    symlinks are resolved (any place when no roots are configured), and still holds the bytes
    indexed: same size and mtime, or else the same SHA-256. A 404 saying why otherwise."""
    bounds = [os.path.join(os.path.realpath(r), "") for r in roots]
    why = "has no file on disk any more"
    for file in photo.files:
        fs_path = to_fs(file.path)
        try:
            handle = open_regular(fs_path)
        except FileNotFoundError:
            continue
        except OSError as exc:
            why = f"cannot be read: {exc.strerror or exc}"
            continue
        try:
            st = os.fstat(handle.fileno())
            real = os.path.join(_real_path(handle, fs_path), "")
            if bounds and not any(real.startswith(b) for b in bounds):
                why = "has no file under a photo root (CAPDEX_PHOTO_ROOTS) once resolved"
            elif (st.st_size == photo.size and st.st_mtime_ns == file.mtime_ns) \
                    or _hash(handle) == photo.content_hash:
                handle.seek(0)
                return IndexedFile(handle, fs_path, st.st_size)
            else:
                why = CHANGED
        except OSError as exc:
            why = f"cannot be read: {exc.strerror or exc}"
        handle.close()
    raise HTTPException(404, f"photo {photo.id} {why}")


def read_indexed(photo: Photo, roots: list[Path]) -> tuple[str, bytes]:
    """The path and bytes of the photo's file (see `open_indexed`), checked to hash to the
    photo: what is decoded for a thumbnail or preview is what was indexed."""
    opened = open_indexed(photo, roots)
    with opened.handle:
        data = opened.handle.read()
    if hashlib.sha256(data).hexdigest() != photo.content_hash:
        raise HTTPException(404, f"photo {photo.id} {CHANGED}")
    return opened.fs_path, data


def file_response(opened: IndexedFile, headers: dict[str, str] | None = None) -> StreamingResponse:
    """The open file's bytes, streamed from the descriptor checked (never the path again)."""
    media_type = mimetypes.guess_type(opened.fs_path)[0] or "application/octet-stream"

    def chunks() -> Iterator[bytes]:
        with opened.handle:
            while chunk := opened.handle.read(CHUNK):
                yield chunk

    return StreamingResponse(chunks(), media_type=media_type,
                             headers={"Content-Length": str(opened.size), **(headers or {})})


def _real_path(handle: BinaryIO, fs_path: str) -> str:
    """Where the open descriptor's file is (Linux knows it), else the path resolved now."""
    try:
        return os.readlink(f"/proc/self/fd/{handle.fileno()}")
    except OSError:
        return os.path.realpath(fs_path)


def _hash(handle: BinaryIO) -> str:
    digest = hashlib.sha256()
    handle.seek(0)
    while chunk := handle.read(1 << 23):
        digest.update(chunk)
    return digest.hexdigest()


class ImageMaker:
    """Full decodes for the API (previews, thumbnails, questions): at most `slots` at once, and
    each cached image made once however many requests ask for it at the same time."""

    def __init__(self, slots: int) -> None:
        self.slots = slots
        self._decodes = threading.BoundedSemaphore(slots)
        self._lock = threading.Lock()
        self._making: dict[str, threading.Event] = {}

    @contextmanager
    def decoding(self) -> Iterator[None]:
        """Hold one of the decode slots for the block (waiting for one if all are taken)."""
        with self._decodes:
            yield

    def make(self, key: str, done: Callable[[], bool], make: Callable[[], object]) -> None:
        """Call `make` unless `done()`; a request for a `key` being made waits for that one."""
        while not done():
            with self._lock:
                event = self._making.get(key)
                mine = event is None
                if event is None:
                    event = self._making[key] = threading.Event()
            if not mine:
                event.wait()
                continue  # made (or failed: then this request tries itself)
            try:
                make()
            finally:
                with self._lock:
                    del self._making[key]
                event.set()
            return


def decode_slots(max_pixels: int, setting: int | None = None) -> int:
    """How many full decodes may run at once: `setting` if given, else what a quarter of the
    machine's memory holds at ~8 bytes per pixel of the largest image allowed (at least 1, at
    most the CPUs)."""
    if setting:
        return setting
    try:
        memory = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        memory = 4 * 2**30
    return max(1, min(os.cpu_count() or 1, memory // 4 // (8 * max_pixels)))
