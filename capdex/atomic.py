"""Writing files so that a crash at any moment leaves the old file or the new one, never a torn one.

Temporary files are named `.capdex-<pid>-<random>.tmp` in the target's folder (short, so a long
target name cannot make the temporary name too long). A `kill -9` can leave one behind;
`remove_stale_temp_files` deletes those whose writing process is gone.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Callable
from pathlib import Path

#: How every capdex temporary file's name starts (a cheap test before the regular expression).
TEMP_PREFIX = ".capdex-"
_TEMP_NAME = re.compile(r"^\.capdex-(\d+)-[^/]*\.tmp$")


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_bytes(path: Path | str, data: bytes, *, durable: bool = True) -> None:
    """Write `data` to `path` so that readers see the old or the new file, never a torn one.

    `durable=False` skips the two fsyncs (~3 ms each here) for caches that can be remade: after
    a power cut such a file may be empty, never half of another one.
    """
    atomic_write_with(path, lambda tmp: Path(tmp).write_bytes(data), durable=durable)


def atomic_write_with(path: Path | str, write: Callable[[str], object], *,
                      durable: bool = True) -> None:
    """Like `atomic_write_bytes`, for a writer that wants a file name: `write(tmp)` fills the
    temporary file, which then replaces `path`. E.g. FAISS writing an index straight to disk,
    instead of serialising a copy of it in memory first (1.5 GB at 1M vectors)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f"{TEMP_PREFIX}{os.getpid()}-", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        if durable:
            fd = os.open(tmp, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        os.replace(tmp, path)
        if durable:
            _fsync_dir(path.parent)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def temp_file_owner(name: str) -> int | None:
    """The pid that wrote a capdex temporary file of this name, or None if it is not one."""
    match = _TEMP_NAME.match(name)
    return int(match.group(1)) if match else None


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: leave its file alone
    return True


def is_stale_temp_file(name: str) -> bool:
    """True for a capdex temporary file whose writer no longer runs."""
    if not name.startswith(TEMP_PREFIX):  # nearly every name: skip the regular expression
        return False
    pid = temp_file_owner(name)
    return pid is not None and not _alive(pid)


def remove_stale_temp_files(folder: Path | str, recursive: bool = False) -> int:
    """Delete temporary files left by killed capdex processes under `folder`; return the count."""
    removed = 0
    stack = [os.fspath(folder)]
    while stack:
        try:
            with os.scandir(stack.pop()) as entries:
                for entry in entries:  # the thumbnail tree has one per photo: prefix first
                    if not entry.name.startswith(TEMP_PREFIX):
                        if recursive and entry.is_dir(follow_symlinks=False):
                            stack.append(entry.path)
                    elif not entry.is_dir(follow_symlinks=False) and is_stale_temp_file(entry.name):
                        try:
                            os.unlink(entry.path)
                            removed += 1
                        except FileNotFoundError:
                            pass
        except (FileNotFoundError, NotADirectoryError):
            continue
    return removed
