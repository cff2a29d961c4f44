"""Opening a file capdex reads without ever blocking on it: regular files only, checked on the
open descriptor.

Issue 20, points 1–2: a FIFO named like a photo or a sidecar (there from the start, or swapped
in after the scan) made a plain `open()` wait forever for a writer, and no signal could end the
run. Opening with O_NONBLOCK returns at once whatever the path is now, and `fstat` on the
descriptor (never on the path, which may change in between) refuses anything but a regular
file. Every read of a photo, a sidecar or a hash goes through `open_regular`.
"""

from __future__ import annotations

import errno
import os
from stat import S_ISREG
from typing import BinaryIO

_NONBLOCK = getattr(os, "O_NONBLOCK", 0)  # POSIX; Windows has no FIFOs to block on
_FLAGS = os.O_RDONLY | _NONBLOCK | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)


class NotRegularFile(OSError):
    """The path names a FIFO, socket, device or folder, not a file with bytes to read."""


def open_regular(path: str | os.PathLike[str] | os.PathLike[bytes] | bytes) -> BinaryIO:
    """Open `path` for reading in binary mode, only if it is a regular file (symlinks followed).

    Never blocks, whatever the path names. Raises NotRegularFile (an OSError), or the OSError
    of the open itself (FileNotFoundError, PermissionError, ...).
    """
    fd = os.open(path, _FLAGS)
    try:
        mode = os.fstat(fd).st_mode
        if not S_ISREG(mode):
            raise NotRegularFile(errno.EINVAL, "not a regular file (a FIFO, socket, device or "
                                 "folder named like one)", os.fsdecode(path))
        if _NONBLOCK:
            os.set_blocking(fd, True)  # no effect on a regular file's reads; kept out of later use
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_regular(path: str | os.PathLike[str], limit: int = -1) -> bytes:
    """The bytes of regular file `path` (at most `limit` when given); see `open_regular`."""
    with open_regular(path) as handle:
        return handle.read(limit)
