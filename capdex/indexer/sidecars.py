"""XMP sidecars during an index run: which to read, what their captions change, which to write.

Rules (people's words are never lost, and capdex never overwrites them):
- A sidecar's description (else title) becomes the photo's human caption, origin "xmp", unless a
  person typed a caption into capdex, which no sidecar replaces.
- A changed sidecar that no longer holds a caption removes the "xmp" caption it gave; a deleted
  sidecar changes nothing (files come and go; captions stay).
- With `--write-xmp`, machine captions go into sidecars, only where no person's text is.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from sqlalchemy import ColumnElement, and_, or_, select, update
from sqlalchemy.orm import Session

from capdex.paths import to_fs
from capdex.indexer.scan import FileStat, sidecar_names
from capdex.indexer.xmp import SidecarText, XmpError, read_sidecar, write_sidecar
from capdex.store import captions
from capdex.store.db import Database
from capdex.store.models import MACHINE, Caption, File, utcnow

log = logging.getLogger(__name__)

XMP_ORIGIN = captions.XMP_ORIGIN


def read_one(stat: FileStat) -> SidecarText | None:
    """The text of the image's sidecar (None: it has none, or it is unreadable)."""
    if stat.sidecar is None:
        return None
    try:
        return read_sidecar(stat.sidecar.fs_path)
    except (OSError, XmpError) as exc:
        log.warning("%s: sidecar ignored: %s", stat.sidecar.path, exc)
        return None


def read_all(stats: Iterable[FileStat], pool: ThreadPoolExecutor) -> dict[str, SidecarText | None]:
    """The sidecar text of each image that has a sidecar, keyed by image path (None: unreadable)."""
    with_sidecar = [s for s in stats if s.sidecar is not None]
    return dict(zip((s.path for s in with_sidecar), pool.map(read_one, with_sidecar), strict=True))


def needs_reading(stat: FileStat, stored_stamp: tuple[int, int] | None) -> bool:
    return stat.sidecar is not None and stat.sidecar_stamp != stored_stamp


def apply(session: Session, file_id: int, photo_id: int, stat: FileStat,
          text: SidecarText | None) -> bool:
    """Record the file's sidecar stamp and take the caption it holds for the photo (the rules
    are `capdex.store.captions.take_sidecar_caption`'s). Returns whether a human caption was
    taken from the sidecar; the caller's commit re-embeds the photo if its caption changed."""
    machine = session.scalar(select(Caption).where(Caption.photo_id == photo_id,
                                                   Caption.source == MACHINE))
    ours = (text is not None and text.machine_caption is not None and machine is not None
            and text.description == text.machine_caption == machine.text)
    size, mtime = stat.sidecar_stamp or (None, None)
    session.execute(update(File).where(File.id == file_id).values(
        sidecar_size=size, sidecar_mtime_ns=mtime, xmp_written_at=utcnow() if ours else None))
    if stat.sidecar is None or text is None:
        return False
    wanted = text.human_caption or ""
    return captions.take_sidecar_caption(session, photo_id, wanted) and bool(wanted.strip())


@dataclass
class WriteReport:
    written: int = 0
    failed: int = 0


def write_machine_captions(db: Database, scope: ColumnElement[bool]) -> WriteReport:
    """Write the machine caption into the sidecar of every file in `scope` (a filter on
    File.path) whose photo has no human caption and whose sidecar lacks the current caption."""
    report = WriteReport()
    human = captions.with_human_caption()
    with db.read() as session:
        rows = session.execute(
            select(File.id, File.path, Caption.text, Caption.captioner, Caption.captioner_version)
            .join(Caption, and_(Caption.photo_id == File.photo_id, Caption.source == MACHINE))
            .where(scope, File.photo_id.not_in(human))
            .where(or_(File.xmp_written_at.is_(None), File.xmp_written_at < Caption.created_at))
            .order_by(File.id)
        ).all()
    listings: dict[str, dict[str, str]] = {}
    for file_id, path, text, captioner, version in rows:
        image = to_fs(path)
        try:
            written = write_sidecar(image, _existing_sidecar(image, listings), text,
                                    captioner or "", version or "")
            st = os.stat(written) if written else None
        except (OSError, XmpError) as exc:
            log.warning("%s: cannot write XMP sidecar: %s", path, exc)
            report.failed += 1
            continue
        values: dict[str, object] = {"xmp_written_at": utcnow()}
        if st is not None:
            values.update(sidecar_size=st.st_size, sidecar_mtime_ns=st.st_mtime_ns)
            report.written += 1
        with db.session() as session:
            session.execute(update(File).where(File.id == file_id).values(**values))
    return report


def _existing_sidecar(image: str, listings: dict[str, dict[str, str]]) -> str | None:
    """The image's sidecar on disk, preferred name first, matching names case-insensitively.

    `listings` caches each folder's sidecar names, so a folder is listed once per run.
    """
    folder, name = os.path.split(image)
    if folder not in listings:
        try:
            listings[folder] = {n.lower(): n for n in os.listdir(folder)
                                if n.lower().endswith(".xmp")}
        except OSError:
            listings[folder] = {}
    present = listings[folder]
    for candidate in sidecar_names(name):
        if candidate in present:
            return os.path.join(folder, present[candidate])
    return None
