"""Walking photo folders: every image file under the roots, with its size, mtime and XMP sidecar.

Paths leave this module in stored form (`capdex.paths.to_store`): names that are not valid
UTF-8 are indexed like any other, and `FileStat.fs_path` opens them again.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from operator import attrgetter
from pathlib import Path
from stat import S_ISREG
from typing import NamedTuple

from capdex.atomic import TEMP_PREFIX, temp_file_owner
from capdex.paths import to_fs, to_store
from capdex.settings import IMAGE_EXTENSIONS

SIDECAR_EXTENSION = ".xmp"
_by_name = attrgetter("name")


class SidecarStat(NamedTuple):
    """An XMP sidecar beside an image (`IMG.jpg.xmp` or `IMG.xmp`). `path` is in stored form."""

    path: str
    size: int
    mtime_ns: int

    @property
    def fs_path(self) -> str:
        return to_fs(self.path)


class FileStat(NamedTuple):
    """An image file as found on disk. `path` is absolute, in stored form.

    A named tuple, not a dataclass: a scan makes one per photo (100,000s), and a frozen
    dataclass costs several times as much to build.
    """

    path: str
    size: int
    mtime_ns: int
    sidecar: SidecarStat | None = None

    @property
    def fs_path(self) -> str:
        return to_fs(self.path)

    @property
    def sidecar_stamp(self) -> tuple[int, int] | None:
        return (self.sidecar.size, self.sidecar.mtime_ns) if self.sidecar else None


@dataclass(frozen=True, slots=True)
class ScanProblem:
    """Something under a root that looks like a photo but cannot be indexed."""

    path: str
    reason: str
    size: int | None = None
    mtime_ns: int | None = None


@dataclass
class ScanResult:
    files: list[FileStat] = field(default_factory=list)
    problems: list[ScanProblem] = field(default_factory=list)
    #: capdex temporary files (OS paths) seen on the way; stale ones are cleaned up by the caller.
    temp_files: list[str] = field(default_factory=list)


def is_image_name(name: str, extensions: frozenset[str] = IMAGE_EXTENSIONS) -> bool:
    return os.path.splitext(name)[1].lower() in extensions


def sidecar_names(image_name: str) -> tuple[str, str]:
    """Lower-cased sidecar names for an image, preferred first: `IMG.jpg.xmp`, then `IMG.xmp`.

    The longer form is specific to one file; `IMG.xmp` may be shared by IMG.jpg and IMG.cr2.
    """
    lower = image_name.lower()
    return lower + SIDECAR_EXTENSION, os.path.splitext(lower)[0] + SIDECAR_EXTENSION


#: Why a symbolic link out of the photo roots is not followed (issue 20, point 8).
LINK_OUT = ("symbolic link out of the photo folder, not followed "
            "(CAPDEX_FOLLOW_SYMLINKS_OUT=true follows it)")


def scan(
    roots: Iterable[str | Path],
    extensions: frozenset[str] = IMAGE_EXTENSIONS,
    exclude: Iterable[str | Path] = (),
    *,
    within: Iterable[str | Path] | None = None,
    follow_links_out: bool = False,
) -> ScanResult:
    """Find image files under `roots`, following symlinks inside them but never a cycle.

    A symlink (to a file or a folder) whose target, resolved, lies outside every folder of
    `within` (default: the root it was found under) is a problem, not followed, unless
    `follow_links_out`: indexing a folder never reaches files outside it. Folders in `exclude`
    (e.g. the data dir, if it lies inside a root) are skipped, and so are hidden folders. A
    file found twice (overlapping roots) is reported once.
    """
    result = ScanResult()
    # every image extension, for one C-level `endswith` per name; `is_image_name` decides only
    # for names starting with a dot (".jpg" alone has no extension)
    suffixes = tuple(extensions)
    one_dot = all(e.startswith(".") and e.count(".") == 1 for e in extensions)
    visited: set[tuple[int, int]] = set()
    excluded = {os.path.abspath(os.fspath(p)) for p in exclude}
    seen: set[str] = set()
    listed: dict[str, dict[str, os.DirEntry[str]]] = {}  # sidecars by folder, for single files
    bounds = None if within is None else [os.path.realpath(os.fspath(w)) for w in within]
    for root in roots:
        root = os.path.abspath(os.fspath(root))
        inside = _Inside(bounds or [os.path.realpath(root)], follow_links_out)
        if os.path.isfile(root) or (os.path.islink(root) and not os.path.exists(root)):
            if bounds is not None and os.path.islink(root) and not inside(root):
                result.problems.append(ScanProblem(to_store(root), LINK_OUT))
                continue
            _add_explicit_file(root, result, extensions, seen, listed)
            continue
        stack = [root]
        while stack:
            directory = stack.pop()
            if directory in excluded:
                continue
            try:
                st = os.stat(directory)
            except OSError as exc:
                result.problems.append(ScanProblem(to_store(directory), _os_reason(exc)))
                continue
            key = (st.st_dev, st.st_ino)
            if key in visited:  # a directory cycle or a second link to the same folder
                continue
            visited.add(key)
            try:
                with os.scandir(directory) as entries:
                    children = sorted(entries, key=_by_name)
            except OSError as exc:
                result.problems.append(ScanProblem(to_store(directory), _os_reason(exc)))
                continue
            subdirs, images = [], []
            sidecars: dict[str, os.DirEntry[str]] = {}
            for entry in children:
                name = entry.name
                try:
                    is_dir = entry.is_dir()  # follows symlinks; no system call for most entries
                except OSError:
                    is_dir = False
                if is_dir:
                    if not name.startswith("."):
                        if entry.is_symlink() and not inside(entry.path):
                            result.problems.append(ScanProblem(to_store(entry.path), LINK_OUT))
                        else:
                            subdirs.append(entry.path)
                    continue
                lower = name.lower()
                if lower.endswith(suffixes) and ((one_dot and name[0] != ".")
                                                 or is_image_name(name, extensions)):
                    if entry.is_symlink() and not inside(entry.path):
                        result.problems.append(ScanProblem(to_store(entry.path), LINK_OUT))
                        continue
                    images.append(entry)
                elif lower.endswith(SIDECAR_EXTENSION):
                    sidecars[lower] = entry
                elif name.startswith(TEMP_PREFIX) and temp_file_owner(name) is not None:
                    result.temp_files.append(entry.path)
            # a folder's stored form is its files' prefix (see capdex.paths), so it is worked out
            # once per folder, and per file only for names that may need escaping
            stored_dir = to_store(directory)
            prefix = os.path.join(stored_dir, "") if stored_dir == directory else None
            for entry in images:
                sidecar = _find_sidecar(entry.name, sidecars) if sidecars else None
                _add_entry(entry, prefix, result, seen, sidecar)
            stack.extend(reversed(subdirs))
    return result


class _Inside:
    """Whether a symlink's target, resolved, lies under one of the `bounds` (resolved folders)."""

    def __init__(self, bounds: list[str], follow_links_out: bool) -> None:
        self.bounds = [os.path.join(b, "") for b in bounds]
        self.follow = follow_links_out

    def __call__(self, path: str) -> bool:
        if self.follow:
            return True
        target = os.path.realpath(path)
        return any(os.path.join(target, "").startswith(b) for b in self.bounds)


def _add_entry(entry: os.DirEntry[str], prefix: str | None, result: ScanResult, seen: set[str],
               sidecar: SidecarStat | None) -> None:
    """One image from a folder listing: stat it once (the entry caches it), and record it."""
    name = entry.name
    stored = prefix + name if prefix is not None and name.isascii() and "\\" not in name \
        else to_store(entry.path)
    _record(stored, entry.stat, entry.is_symlink, result, seen, sidecar)


def _find_sidecar(name: str, sidecars: dict[str, os.DirEntry[str]]) -> SidecarStat | None:
    for candidate in sidecar_names(name):
        entry = sidecars.get(candidate)
        if entry is None:
            continue
        try:
            st = entry.stat()
        except OSError:
            continue
        return SidecarStat(to_store(entry.path), st.st_size, st.st_mtime_ns)
    return None


def _add_explicit_file(path: str, result: ScanResult, extensions: frozenset[str],
                       seen: set[str], listed: dict[str, dict[str, os.DirEntry[str]]]) -> None:
    """A root that is one file (as watch mode passes them): its folder is listed once per scan
    to find sidecars, however many of its files are roots."""
    if not is_image_name(path, extensions):
        result.problems.append(ScanProblem(to_store(path), "not an image file extension"))
        return
    folder = os.path.dirname(path)
    if folder not in listed:
        try:
            with os.scandir(folder) as entries:
                listed[folder] = {e.name.lower(): e for e in entries
                                  if e.name.lower().endswith(SIDECAR_EXTENSION)}
        except OSError:
            listed[folder] = {}
    _add_file(path, result, seen, _find_sidecar(os.path.basename(path), listed[folder]))


def _add_file(path: str, result: ScanResult, seen: set[str], sidecar: SidecarStat | None) -> None:
    _record(to_store(path), lambda: os.stat(path), lambda: os.path.islink(path), result, seen,
            sidecar)


def _record(stored: str, stat: Callable[[], os.stat_result], is_link: Callable[[], bool],
            result: ScanResult, seen: set[str], sidecar: SidecarStat | None) -> None:
    """Record one image once: its size and mtime (`stat` follows symlinks), or why not."""
    if stored in seen:
        return
    seen.add(stored)
    try:
        st = stat()
    except FileNotFoundError:
        reason = "broken symbolic link" if is_link() else "file disappeared"
        result.problems.append(ScanProblem(stored, reason))
        return
    except OSError as exc:
        result.problems.append(ScanProblem(stored, _os_reason(exc)))
        return
    if not S_ISREG(st.st_mode):  # a FIFO (would block a read), socket or device
        result.problems.append(ScanProblem(stored, "not a regular file", None, None))
        return
    result.files.append(FileStat(stored, st.st_size, st.st_mtime_ns, sidecar))


def _os_reason(exc: OSError) -> str:
    return f"cannot read: {exc.strerror or exc}"
