"""Deciding what an index run must do, by comparing what is on disk with what the store knows.

Pure functions over plain data, so the rules (unchanged, changed, copied, moved, gone) are easy
to test without a database or a model.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import NamedTuple

from capdex.indexer.scan import FileStat

class KnownFile(NamedTuple):
    """A file row as stored (a named tuple: a re-run loads one per stored file)."""

    id: int
    path: str
    size: int
    mtime_ns: int
    photo_id: int
    sidecar_size: int | None = None
    sidecar_mtime_ns: int | None = None

    @property
    def sidecar_stamp(self) -> tuple[int, int] | None:
        if self.sidecar_size is None or self.sidecar_mtime_ns is None:
            return None
        return (self.sidecar_size, self.sidecar_mtime_ns)


@dataclass
class Plan:
    """The outcome of comparing a scan with the store, before any file is read."""

    unchanged: int = 0
    #: Files to hash: new paths, or known paths whose size or mtime changed.
    to_hash: list[tuple[FileStat, KnownFile | None]] = field(default_factory=list)
    #: Known files under the scanned roots that are no longer there.
    gone: list[KnownFile] = field(default_factory=list)
    #: Files that failed before and have not changed since (not retried).
    still_failing: list[FileStat] = field(default_factory=list)
    #: Unchanged images whose XMP sidecar appeared, changed or went away.
    sidecar_changed: list[tuple[FileStat, KnownFile]] = field(default_factory=list)


def plan_changes(
    scanned: list[FileStat],
    known: dict[str, KnownFile],
    failed: dict[str, tuple[int | None, int | None]],
) -> Plan:
    """Split a scan into unchanged, to-hash, gone and known-bad files.

    `known` holds the stored files under the scanned roots; `failed` maps paths recorded as
    errors to the (size, mtime_ns) they had, so a file is retried once it changes.
    """
    plan = Plan()
    seen: set[str] = set()
    for stat in scanned:
        seen.add(stat.path)
        row = known.get(stat.path)
        if row is not None and row.size == stat.size and row.mtime_ns == stat.mtime_ns:
            plan.unchanged += 1
            if row.sidecar_stamp != stat.sidecar_stamp:
                plan.sidecar_changed.append((stat, row))
        elif row is None and failed.get(stat.path) == (stat.size, stat.mtime_ns):
            plan.still_failing.append(stat)
        else:
            plan.to_hash.append((stat, row))
    plan.gone = [row for path, row in known.items() if path not in seen]
    return plan


@dataclass
class NewContent:
    """Bytes no stored photo has: caption once, then link every file that carries them."""

    content_hash: str
    files: list[tuple[FileStat, KnownFile | None]] = field(default_factory=list)


@dataclass
class Resolution:
    """What hashing decided: metadata-only updates, links to known photos, and new content."""

    touched: list[tuple[FileStat, KnownFile]] = field(default_factory=list)
    relinked: list[tuple[FileStat, KnownFile, int]] = field(default_factory=list)
    copies: list[tuple[FileStat, int]] = field(default_factory=list)
    moves: list[tuple[FileStat, int]] = field(default_factory=list)
    new_content: dict[str, NewContent] = field(default_factory=dict)


class Resolver:
    """Classifies hashed files one at a time, in scan order (files stream in as they are read).

    `photo_id` is the stored photo with the file's bytes, as the store was before this run. A
    new path whose photo lost a file this run is a move; bytes no stored photo has are new
    content, grouped by hash (identical new files are one photo, captioned once).
    """

    def __init__(self, gone: list[KnownFile]) -> None:
        self.result = Resolution()
        self._gone_photos: dict[int, int] = defaultdict(int)
        for row in gone:
            self._gone_photos[row.photo_id] += 1

    def add(self, stat: FileStat, row: KnownFile | None, content_hash: str,
            photo_id: int | None) -> NewContent | None:
        """Record one file; returns its NewContent when it is the first file of new bytes."""
        result = self.result
        if row is not None and photo_id == row.photo_id:
            result.touched.append((stat, row))  # same bytes, new mtime: nothing to redo
        elif photo_id is not None and row is not None:
            result.relinked.append((stat, row, photo_id))  # edited into a photo we know
        elif photo_id is not None:
            if self._gone_photos[photo_id] > 0:
                self._gone_photos[photo_id] -= 1
                result.moves.append((stat, photo_id))
            else:
                result.copies.append((stat, photo_id))
        else:
            content = result.new_content.get(content_hash)
            if content is None:
                content = result.new_content[content_hash] = NewContent(content_hash)
                content.files.append((stat, row))
                return content
            content.files.append((stat, row))
        return None


def resolve(
    hashed: list[tuple[FileStat, KnownFile | None, str]],
    photo_by_hash: dict[str, int],
    gone: list[KnownFile],
) -> Resolution:
    """Classify hashed files. A new path whose photo lost a file this run is a move."""
    resolver = Resolver(gone)
    for stat, row, content_hash in hashed:
        resolver.add(stat, row, content_hash, photo_by_hash.get(content_hash))
    return resolver.result
