"""An index run: scan → plan → hash → decode → caption → embed → commit, in batches.

Each batch is committed in one transaction (photo, files, caption, vector, errors), so an
interrupted run — Ctrl-C, a crash, `kill -9` — keeps what it finished and the next run does only
the rest; the FAISS file is a cache repaired from the database. One run (or watcher) at a time
per data dir holds `index.lock`; searches and the server's caption edits go on meanwhile.

Watch mode runs the very same pass, limited to the paths that changed (`_pass` with scopes).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from filelock import FileLock, Timeout
from sqlalchemy import ColumnElement, and_, delete, or_, select, update

from capdex.atomic import is_stale_temp_file, remove_stale_temp_files
from capdex.embedder import Embedder, get_embedder
from capdex.images import ImageLoadError, decode_image
from capdex.paths import to_fs, to_store
from capdex.settings import Settings
from capdex.captioners import Captioner, CaptionerError, registry
from capdex.captioners.ocr import OcrEngine, OcrUnavailable
from capdex.indexer import ocr as ocr_stage
from capdex.indexer import sidecars
from capdex.indexer.embed import embed_missing
from capdex.indexer.metadata import PhotoMetadata, read_metadata
from capdex.indexer.plan import KnownFile, NewContent, Resolution, hash_file, plan_changes, resolve
from capdex.indexer.scan import FileStat, ScanProblem, scan
from capdex.indexer.thumbnails import has_thumbnail, write_thumbnail
from capdex.indexer.watch import ChangeWatcher, WatchError, scopes_for
from capdex.indexer.xmp import SidecarText
from capdex.store import repo
from capdex.store.db import Database
from capdex.store.models import HUMAN, MACHINE, Caption, File, IndexingError, Photo, Vector, utcnow
from capdex.store.vectors import VectorIndex, db_source, index_is_current, open_index

log = logging.getLogger(__name__)

#: Captioned batches that may wait for the writer thread (embedding and committing).
WRITE_QUEUE = 4
#: (stage, done, total) — stages are "scan", "hash", "caption", "ocr" and "embed".
ProgressCallback = Callable[[str, int, int], None]


class IndexerError(RuntimeError):
    """The run could not start (bad root, data dir in use); nothing was changed."""


@dataclass
class IndexSummary:
    """Counts of one run, for the one-line summary and `--json`."""

    scanned: int = 0
    unchanged: int = 0
    new: int = 0
    changed: int = 0
    copied: int = 0
    moved: int = 0
    removed: int = 0
    recaptioned: int = 0
    reembedded: int = 0
    failed: int = 0
    captioned: int = 0
    sidecar_captions: int = 0
    sidecars_written: int = 0
    sidecars_failed: int = 0
    ocr_read: int = 0
    ocr_with_text: int = 0
    ocr_seconds: float = 0.0
    interrupted: bool = False
    seconds: float = 0.0
    failures: list[tuple[str, str]] = field(default_factory=list)

    def line(self) -> str:
        text = (
            f"{self.new} new, {self.changed} changed, {self.moved} moved, {self.copied} copied, "
            f"{self.removed} removed, {self.recaptioned} recaptioned, {self.failed} failed "
            f"({self.unchanged} unchanged) in {self.seconds:.1f}s"
        )
        if self.sidecar_captions:
            text += f"; {self.sidecar_captions} caption(s) from XMP sidecars"
        if self.sidecars_written or self.sidecars_failed:
            text += f"; {self.sidecars_written} sidecar(s) written"
            text += f", {self.sidecars_failed} could not be" if self.sidecars_failed else ""
        if self.ocr_read:
            text += f"; OCR read {self.ocr_read} photo(s), {self.ocr_with_text} with text"
        return text + ("; interrupted" if self.interrupted else "")

    @property
    def did_something(self) -> bool:
        """Whether anything changed (watch mode prints only batches that did)."""
        return bool(self.new or self.changed or self.moved or self.copied or self.removed
                    or self.recaptioned or self.reembedded or self.failures
                    or self.sidecar_captions or self.sidecars_written or self.ocr_read)

    def as_dict(self) -> dict[str, object]:
        data = {k: v for k, v in self.__dict__.items() if k != "failures"}
        data["seconds"] = round(self.seconds, 3)
        data["ocr_seconds"] = round(self.ocr_seconds, 3)
        return data


@dataclass
class _Work:
    """One image to caption: new content, or a stored photo to re-caption. `path` is stored form."""

    path: str
    content: NewContent | None = None
    photo_id: int | None = None
    #: Sidecar texts of the content's files that must be (re)read, by image path.
    sidecars: dict[str, SidecarText | None] = field(default_factory=dict)
    image: object = None
    metadata: PhotoMetadata | None = None
    error: str | None = None


def _under(column, roots: list[str], dialect: str) -> ColumnElement[bool]:  # type: ignore[no-untyped-def]
    """Rows whose stored path is one of `roots` (stored form) or lies below one.

    On SQLite a range of the path index (`root/` ≤ path < `root0`, '0' being the character
    after '/'), which is exact: SQLite's LIKE ignores ASCII case, so `/x/Photos/%` also matched
    `/x/photos/...`, whose files a run over `/x/Photos` then took for deleted. PostgreSQL's
    LIKE is case-sensitive (and its text order need not be byte order), so it keeps LIKE.
    """
    parts = []
    for root in roots:
        base = root.rstrip(os.sep)
        if dialect == "sqlite":
            below = and_(column >= base + os.sep, column < base + chr(ord(os.sep) + 1))
        else:
            below = column.startswith(base + os.sep, autoescape=True)
        parts.append(or_(column == root, below))
    return or_(*parts)


class Indexer:
    """Runs index passes over folders into one data dir (one run at a time per data dir)."""

    def __init__(
        self,
        settings: Settings,
        db: Database,
        *,
        captioner: Captioner | None = None,
        embedder: Embedder | None = None,
        recaption: bool = False,
        reembed: bool = False,
        write_xmp: bool = False,
        retry_failed: bool = False,
        progress: ProgressCallback | None = None,
        stop: threading.Event | None = None,
        ocr: bool | None = None,
        ocr_engine: OcrEngine | None = None,
    ) -> None:
        self.settings = settings
        self.db = db
        self._captioner = captioner
        self.embedder = embedder or get_embedder(settings)
        self.recaption = recaption
        self.reembed = reembed
        self.write_xmp = write_xmp
        self.retry_failed = retry_failed
        self.progress = progress or (lambda stage, done, total: None)
        #: Set it (e.g. from a Ctrl-C handler) to end the run after the batch in hand.
        self.stop = stop or threading.Event()
        self._index: VectorIndex | None = None
        self._dirty = False
        self._last_save = time.monotonic()
        #: The OCR stage (issue 10), None when OCR is off (`ocr=False`, settings.ocr).
        self.ocr = (ocr_stage.OcrStage(settings, db, ocr_engine)
                    if (settings.ocr if ocr is None else ocr) else None)

    # -- lazily loaded heavy parts ----------------------------------------------------------------
    @property
    def captioner(self) -> Captioner:
        if self._captioner is None:
            self._captioner = registry.create(self.settings.captioner, self.settings)
        return self._captioner

    @property
    def index(self) -> VectorIndex:
        if self._index is None:
            self._index = open_index(
                self.settings.index_path, self.db, self.embedder.name, lambda: self.embedder.dim,
                self.settings.exact_search_max,
                compress_above=self.settings.vector_compress_above,
            )
        return self._index

    def _warm_up_models(self) -> None:
        """Load the captioner and the embedder in a background thread while files are hashed,
        so the first batch does not wait for them. Any error is left for first use to raise."""
        captioner, embedder = self.captioner, self.embedder

        def warm() -> None:
            try:
                captioner.warm_up()
                embedder.warm_up()
            except Exception as exc:  # noqa: BLE001 - reported properly when the model is used
                log.debug("warming up the models failed: %s", exc)

        threading.Thread(target=warm, name="capdex-warm-up", daemon=True).start()

    # -- runs -------------------------------------------------------------------------------------
    def run(self, roots: Iterable[str | Path]) -> IndexSummary:
        """One full pass over `roots`: index what is new or changed, forget what is gone."""
        roots = self._check_roots(roots)
        with self._exclusive():
            return self._pass(roots, roots, full=True)

    def watch(self, roots: Iterable[str | Path], *, poll: bool = False,
              on_batch: Callable[[IndexSummary], None] | None = None) -> None:
        """A full pass, then index changes under `roots` as they happen, until `self.stop` is set.

        Events are debounced (settings.watch_debounce_seconds, at most
        settings.watch_max_delay_seconds) and each batch runs the same pass as `run`, limited
        to the changed paths, then saves the vector index so searches see it at once.
        """
        roots = self._check_roots(roots)
        report = on_batch or (lambda summary: None)
        # Watch first, then catch up, so nothing changed during the first pass is missed.
        with self._exclusive(), self._watching(roots, poll) as watcher:
            try:
                report(self._pass(roots, roots, full=True))
                while not self.stop.is_set():
                    changed = watcher.next_batch(self.stop, self.settings.watch_debounce_seconds,
                                                 self.settings.watch_max_delay_seconds)
                    if changed:
                        self._watch_batch(changed, report)
            finally:
                self._save()

    def _watch_batch(self, changed: list[str], report: Callable[[IndexSummary], None]) -> None:
        """Index one batch of changed paths; a failure is logged and watching goes on."""
        scopes = scopes_for(changed)
        present = [p for p in scopes if os.path.lexists(p)]
        try:
            report(self._pass(present, scopes, full=False))
        except Exception:
            log.exception("indexing %d changed path(s) failed; they will be picked up by their "
                          "next change or the next `capdex index` run", len(scopes))

    @contextmanager
    def _watching(self, roots: list[str], poll: bool) -> Iterator[ChangeWatcher]:
        watcher = ChangeWatcher(roots, exclude=[str(self.settings.data_dir)], poll=poll,
                                poll_interval=self.settings.watch_poll_seconds)
        try:
            with watcher:
                yield watcher
        except WatchError as exc:
            raise IndexerError(str(exc)) from exc

    def _check_roots(self, roots: Iterable[str | Path]) -> list[str]:
        checked = [os.path.abspath(os.fspath(r)) for r in roots]
        for root in checked:
            if not os.path.exists(root):
                raise IndexerError(f"{to_store(root)}: no such file or folder")
        return checked

    @contextmanager
    def _exclusive(self) -> Iterator[None]:
        """Hold the data dir's index lock (refusing a second indexer) and clean up after crashes."""
        self.settings.data_dir.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(self.settings.data_dir / "index.lock"))
        try:
            lock.acquire(timeout=0)
        except Timeout as exc:
            raise IndexerError(
                f"another capdex index run is using {self.settings.data_dir}; "
                "wait for it to finish (searching works meanwhile)"
            ) from exc
        try:
            # Only an indexer writes temp files under the data dir except the brief, locked
            # index saves (whose writers are alive, so their files are not "stale").
            remove_stale_temp_files(self.settings.data_dir, recursive=True)
            yield
        finally:
            lock.release()

    def recaption_photos(self, photo_ids: Iterable[int]) -> IndexSummary:
        """Caption these stored photos again with this indexer's captioner, whatever made their
        current machine caption (a person asked for it; human captions still win)."""
        with self._exclusive():
            started = time.monotonic()
            summary = IndexSummary()
            with self.db.read() as session:
                rows = session.execute(
                    select(File.photo_id, File.path).where(File.photo_id.in_(list(photo_ids)))
                    .order_by(File.photo_id, File.id)
                ).all()
            work: dict[int, _Work] = {}
            for photo_id, path in rows:
                if photo_id not in work and os.path.isfile(to_fs(path)):
                    work[photo_id] = _Work(path, photo_id=photo_id)
            if work:
                self._caption_all(list(work.values()), summary)
                self._remove_from_index(ocr_stage.drop_stale_vectors(self.db))
                self._embed_missing()
            self._save()
            summary.seconds = time.monotonic() - started
            return summary

    # -- one pass ---------------------------------------------------------------------------------
    def _pass(self, scan_roots: list[str], scopes: list[str], full: bool) -> IndexSummary:
        """Bring the store in line with the disk under `scopes` (OS paths), scanning `scan_roots`
        (the scopes that still exist). `full` passes also re-caption/re-embed when asked."""
        started = time.monotonic()
        summary = IndexSummary()
        self._check_ocr()
        found = scan(scan_roots, exclude=[self.settings.data_dir])
        for temp in found.temp_files:  # left in photo folders by a killed sidecar write
            if is_stale_temp_file(os.path.basename(temp)):
                Path(temp).unlink(missing_ok=True)
        summary.scanned = len(found.files)
        self.progress("scan", summary.scanned, summary.scanned)

        known, failed = self._known_under([to_store(s) for s in scopes])
        vanished: list[str] = []  # errors of deleted files
        if failed:
            seen = {f.path for f in found.files} | {p.path for p in found.problems}
            vanished = [path for path in failed if path not in seen]
        if self.retry_failed:
            failed = {}
        plan = plan_changes(found.files, known, failed)
        if any(row is None for _, row in plan.to_hash):  # new paths: most likely new photos
            self._warm_up_models()
        # Problems seen before (same path, size and mtime) are still failing, not news.
        problems = [p for p in found.problems if failed.get(p.path) != (p.size, p.mtime_ns)]
        summary.unchanged = plan.unchanged
        summary.failed += len(plan.still_failing) + len(found.problems) - len(problems)

        with ThreadPoolExecutor(self.settings.decode_threads) as pool:
            hashed = self._hash(plan.to_hash, problems, pool)
            to_read = [s for s, row in plan.sidecar_changed]
            to_read += [s for s, row, _ in hashed
                        if sidecars.needs_reading(s, row.sidecar_stamp if row else None)]
            texts = sidecars.read_all(to_read, pool)

        photo_by_hash = self._photos_by_hash({h for _, _, h in hashed})
        resolution = resolve(hashed, photo_by_hash, plan.gone)
        summary.moved, summary.copied = len(resolution.moves), len(resolution.copies)
        summary.changed = len(resolution.relinked) + sum(
            1 for c in resolution.new_content.values() for _, row in c.files if row is not None
        )
        summary.removed = len(plan.gone) - len(resolution.moves)
        self._apply_links(resolution, plan.gone, plan.sidecar_changed, problems, vanished, texts,
                          summary)
        summary.failed += len(problems)
        summary.failures.extend((p.path, p.reason) for p in problems)

        if full and self.reembed:
            self._forget_vectors()
        work = [
            _Work(c.representative.path, content=c,
                  sidecars={s.path: texts[s.path] for s, _ in c.files if s.path in texts})
            for c in resolution.new_content.values()
        ]
        if full and self.recaption:
            work.extend(self._stale_machine_captions())
        if work:
            self._caption_all(work, summary)
        self._ocr_pass(summary)
        if not self.stop.is_set():
            summary.reembedded = self._embed_missing()
        self._drop_orphans()
        if self.write_xmp and not self.stop.is_set():
            report = sidecars.write_machine_captions(
                self.db, _under(File.path, [to_store(s) for s in scopes], self._dialect))
            summary.sidecars_written, summary.sidecars_failed = report.written, report.failed
        self._save(force=full)
        summary.interrupted = self.stop.is_set()
        summary.seconds = time.monotonic() - started
        return summary

    # -- planning helpers -------------------------------------------------------------------------
    def _hash(self, to_hash: list[tuple[FileStat, KnownFile | None]], problems: list[ScanProblem],
              pool: ThreadPoolExecutor) -> list[tuple[FileStat, KnownFile | None, str]]:
        hashed: list[tuple[FileStat, KnownFile | None, str]] = []
        futures = [(s, row, pool.submit(hash_file, s.fs_path)) for s, row in to_hash]
        for done, (stat, row, future) in enumerate(futures, 1):
            try:
                hashed.append((stat, row, future.result()))
            except OSError as exc:
                reason = ("file disappeared before it could be read"
                          if isinstance(exc, FileNotFoundError)
                          else f"cannot read: {exc.strerror or exc}")
                problems.append(ScanProblem(stat.path, reason, stat.size, stat.mtime_ns))
            self.progress("hash", done, len(futures))
        return hashed

    @property
    def _dialect(self) -> str:
        return self.db.engine.dialect.name

    def _known_under(
        self, roots: list[str]
    ) -> tuple[dict[str, KnownFile], dict[str, tuple[int | None, int | None]]]:
        """The stored files and recorded errors under `roots`, by path.

        Core queries made into named tuples, not ORM rows: an unchanged re-run of a big library
        is mostly this and the scan (100,000 rows here cost ~1 s through the ORM).
        """
        make = KnownFile._make
        with self.db.engine.connect() as conn:
            rows = conn.execute(  # all at once: fetching row by row costs twice as much
                select(File.id, File.path, File.size, File.mtime_ns, File.photo_id,
                       File.sidecar_size, File.sidecar_mtime_ns)
                .where(_under(File.path, roots, self._dialect))
            ).all()
            known = {row.path: row for row in map(make, rows)}
            failed = {
                path: (size, mtime_ns)
                for path, size, mtime_ns in conn.execute(
                    select(IndexingError.path, IndexingError.size, IndexingError.mtime_ns)
                    .where(_under(IndexingError.path, roots, self._dialect))
                )
            }
        return known, failed

    def _photos_by_hash(self, hashes: set[str]) -> dict[str, int]:
        result: dict[str, int] = {}
        items = sorted(hashes)
        with self.db.read() as session:
            for start in range(0, len(items), 500):
                chunk = items[start : start + 500]
                rows = session.execute(
                    select(Photo.content_hash, Photo.id).where(Photo.content_hash.in_(chunk))
                )
                result.update((h, i) for h, i in rows)
        return result

    def _apply_links(self, resolution: Resolution, gone: list[KnownFile],
                     sidecar_changed: list[tuple[FileStat, KnownFile]],
                     problems: list[ScanProblem], vanished: list[str],
                     texts: dict[str, SidecarText | None], summary: IndexSummary) -> None:
        """One transaction for everything that needs no model: links, moves, removals, errors,
        and captions from new or changed sidecars."""
        removed_vectors: list[int] = []
        with self.db.session() as session:
            # (file id, photo id, stat, stored sidecar stamp) of every file linked to a photo.
            linked: list[tuple[int, int, FileStat, tuple[int, int] | None]] = []
            for stat, row in resolution.touched:
                session.execute(update(File).where(File.id == row.id)
                                .values(size=stat.size, mtime_ns=stat.mtime_ns))
                linked.append((row.id, row.photo_id, stat, row.sidecar_stamp))
            for stat, row, photo_id in resolution.relinked:
                session.execute(update(File).where(File.id == row.id)
                                .values(size=stat.size, mtime_ns=stat.mtime_ns, photo_id=photo_id))
                linked.append((row.id, photo_id, stat, row.sidecar_stamp))
            gone_ids = [row.id for row in gone]
            for start in range(0, len(gone_ids), 500):
                session.execute(delete(File).where(File.id.in_(gone_ids[start : start + 500])))
            session.flush()
            for stat, photo_id in resolution.copies + resolution.moves:
                row = File(path=stat.path, size=stat.size, mtime_ns=stat.mtime_ns, photo_id=photo_id)
                session.add(row)
                session.flush()
                linked.append((row.id, photo_id, stat, None))
            linked += [(row.id, row.photo_id, stat, row.sidecar_stamp) for stat, row in sidecar_changed]
            self._clear_errors(session, [s.path for _, _, s, _ in linked]
                               + [r.path for r in gone] + vanished)
            for file_id, photo_id, stat, stamp in linked:
                if stat.sidecar_stamp != stamp:
                    removed, took = sidecars.apply(session, file_id, photo_id, stat,
                                                   texts.get(stat.path))
                    removed_vectors += removed
                    summary.sidecar_captions += took
            for problem in problems:
                self._record_error(session, problem.path, problem.reason, problem.size,
                                   problem.mtime_ns)
        self._remove_from_index(removed_vectors)

    def _stale_machine_captions(self) -> list[_Work]:
        """Photos whose machine caption came from another captioner or version (and no human one)."""
        name, version = self.captioner.name, self.captioner.version
        with self.db.read() as session:
            human = select(Caption.photo_id).where(Caption.source == HUMAN)
            rows = session.execute(
                select(Caption.photo_id, File.path)
                .join(File, File.photo_id == Caption.photo_id)
                .where(Caption.source == MACHINE)
                .where(or_(Caption.captioner != name, Caption.captioner_version != version))
                .where(Caption.photo_id.not_in(human))
                .order_by(Caption.photo_id, File.id)
            ).all()
        work: dict[int, _Work] = {}
        for photo_id, path in rows:
            work.setdefault(photo_id, _Work(path, photo_id=photo_id))
        return list(work.values())

    # -- captioning -------------------------------------------------------------------------------
    def _decode(self, item: _Work) -> _Work:
        """Decode, read metadata and write the thumbnail; any failure is the item's error."""
        captioner = self.captioner
        # the model's input on the short side, the thumbnail's box on the long side
        thumb = self.settings.thumbnail_size
        hint = (captioner.input_size or thumb, thumb)
        try:
            decoded = decode_image(to_fs(item.path), max_pixels=self.settings.max_image_pixels,
                                   size_hint=hint)
            item.image = decoded.image
            item.metadata = read_metadata(decoded.exif, decoded.size)
        except ImageLoadError as exc:
            item.error = str(exc)
            return item
        except Exception as exc:  # noqa: BLE001 - one strange file must never stop a run
            item.error = f"could not read image ({type(exc).__name__}: {exc})"
            return item
        content_hash = item.content.content_hash if item.content else None
        if content_hash and not has_thumbnail(self.settings, content_hash):
            try:
                write_thumbnail(self.settings, content_hash, decoded.image)
            except Exception as exc:  # noqa: BLE001 - a missing thumbnail is made on demand
                log.warning("cannot write thumbnail for %s: %s", item.path, exc)
        try:
            item.image = captioner.prepare(decoded.image)
        except Exception as exc:  # noqa: BLE001 - one strange file must never stop a run
            item.error = f"could not prepare image ({type(exc).__name__}: {exc})"
        return item

    def _batches(self, work: list[_Work], size: int) -> Iterator[list[_Work]]:
        """Decoded batches, with the next batches decoding in threads while one is captioned."""
        with ThreadPoolExecutor(self.settings.decode_threads) as pool:
            pending: list[list[Future[_Work]]] = []
            starts = iter(range(0, len(work), size))
            for _ in range(2):
                start = next(starts, None)
                if start is not None:
                    pending.append([pool.submit(self._decode, w) for w in work[start : start + size]])
            while pending:
                batch = [f.result() for f in pending.pop(0)]
                start = next(starts, None)
                if start is not None:
                    pending.append([pool.submit(self._decode, w) for w in work[start : start + size]])
                yield batch

    def _caption_all(self, work: list[_Work], summary: IndexSummary) -> None:
        """Decode ahead in threads, caption a batch, and embed and commit it in a writer thread
        while the model captions the next batches, so the model waits neither on files, nor on
        the embedder (which may still be loading), nor on the database. At most
        `WRITE_QUEUE` batches wait to be written (a bounded queue: memory stays flat, and a
        database error stops the run a few batches later at most)."""
        captioner = self.captioner
        size = self.settings.batch_size or captioner.batch_size
        done = 0
        self.progress("caption", 0, len(work))
        with ThreadPoolExecutor(1, thread_name_prefix="capdex-commit") as writer:
            writing: deque[Future[None]] = deque()
            for batch in self._batches(work, size):
                if self.stop.is_set():
                    break  # what is committed stays; the next run does the rest
                ready = [w for w in batch if w.error is None]
                texts = self._caption_batch(captioner, ready)
                captioned = [(w, t) for w, t in zip(ready, texts, strict=True) if t is not None]
                for w in batch:
                    w.image = None
                while writing and (writing[0].done() or len(writing) >= WRITE_QUEUE):
                    writing.popleft().result()  # re-raises the writer's error here
                done += len(batch)
                writing.append(writer.submit(self._write_batch, batch, captioned, captioner,
                                             summary, done, len(work)))
            while writing:
                writing.popleft().result()

    def _write_batch(self, batch: list[_Work], captioned: list[tuple[_Work, str]],
                     captioner: Captioner, summary: IndexSummary, done: int, total: int) -> None:
        """The writer thread's part: embed, commit, report progress, save the index now and
        then."""
        vectors = self.embedder.embed([t for _, t in captioned])
        self._commit_batch(batch, captioned, vectors, captioner, summary)
        self.progress("caption", done, total)
        self._maybe_save()

    def _caption_batch(self, captioner: Captioner, items: list[_Work]) -> list[str | None]:
        """Caption a batch; if the batch fails, caption one by one so only bad images fail."""
        if not items:
            return []
        try:
            texts = [str(t) for t in captioner.caption_batch([w.image for w in items])]
            if len(texts) != len(items):
                raise RuntimeError(f"returned {len(texts)} captions for {len(items)} images")
            return texts
        except CaptionerError:
            raise  # the model cannot run at all (not installed, endpoint down): stop the run
        except Exception as exc:  # noqa: BLE001 - isolate the image that breaks the model
            if len(items) == 1:
                items[0].error = f"captioning failed ({captioner.name}): {exc}"
                log.warning("%s: %s", items[0].path, items[0].error)
                return [None]
            return [self._caption_batch(captioner, [w])[0] for w in items]

    def _commit_batch(self, batch: list[_Work], captioned: list[tuple[_Work, str]],
                      vectors: np.ndarray, captioner: Captioner, summary: IndexSummary) -> None:
        """One transaction for a batch, written a table at a time (one multi-row INSERT per
        table and one errors delete), not a flush per photo: per-row ORM round trips were most
        of the write path's cost once captioning is fast."""
        added: list[tuple[int, np.ndarray]] = []
        removed: list[int] = []
        fresh = [(w, t, v) for (w, t), v in zip(captioned, vectors, strict=True) if w.content]
        again = [(w, t, v) for (w, t), v in zip(captioned, vectors, strict=True) if not w.content]
        with self.db.session() as session:
            rows: list[Vector] = []
            wanted: list[np.ndarray] = []
            human = self._create_photos(session, fresh, captioner, summary)
            for (item, _, vector), photo_id, caption_id in human:
                if caption_id is not None:  # None: a sidecar's human caption speaks for it
                    rows.append(self._vector_row(photo_id, caption_id, vector))
                    wanted.append(vector)
            for item, text, vector in again:
                photo = session.get(Photo, item.photo_id)
                if photo is None:
                    continue
                self._replace_machine_caption(session, photo, text, captioner)
                summary.recaptioned += 1
                caption = repo.effective_caption(photo.captions)
                if caption is None or caption.source != MACHINE:
                    continue  # a human caption speaks for this photo (embedded by _embed_missing)
                removed += repo.delete_vectors_of(session, [photo.id])
                rows.append(self._vector_row(photo.id, caption.id, vector))
                wanted.append(vector)
            session.add_all(rows)
            session.flush()
            added = [(row.id, vector) for row, vector in zip(rows, wanted, strict=True)]
            failed = [item for item in batch if item.error is not None]
            for item in failed:
                summary.failed += 1
                summary.failures.append((item.path, item.error or ""))
                stats = [(s, r) for s, r in item.content.files] if item.content else []
                for stat, row in stats:
                    if row is not None:  # its old content is gone and the new one is unreadable
                        session.execute(delete(File).where(File.id == row.id))
                    self._record_error(session, stat.path, item.error or "", stat.size,
                                       stat.mtime_ns)
        summary.captioned += len(captioned)
        self._remove_from_index(removed)
        self._add_to_index(added)

    def _vector_row(self, photo_id: int, caption_id: int, vector: np.ndarray,
                    ocr_id: int | None = None) -> Vector:
        return Vector.of(photo_id, caption_id, self.embedder.name, vector, ocr_id)

    def _create_photos(self, session, fresh: list[tuple[_Work, str, np.ndarray]],  # type: ignore[no-untyped-def]
                       captioner: Captioner, summary: IndexSummary,
                       ) -> list[tuple[tuple[_Work, str, np.ndarray], int, int | None]]:
        """Photos, machine captions and files of new content, a table at a time.

        Returns, per entry of `fresh`, (entry, photo id, id of the machine caption if it is the
        one that speaks for the photo, else None because a sidecar gave it a human caption).
        """
        if not fresh:
            return []
        photos = []
        for item, _, _ in fresh:
            assert item.content is not None and item.metadata is not None
            meta, first = item.metadata, item.content.representative
            photos.append(Photo(
                content_hash=item.content.content_hash, size=first.size, width=meta.width,
                height=meta.height, taken_at=meta.taken_at, camera_make=meta.camera_make,
                camera_model=meta.camera_model, lens=meta.lens, gps_latitude=meta.latitude,
                gps_longitude=meta.longitude))
        session.add_all(photos)
        session.flush()
        captions = [Caption(photo_id=photo.id, text=text, source=MACHINE, captioner=captioner.name,
                            captioner_version=captioner.version)
                    for photo, (_, text, _) in zip(photos, fresh, strict=True)]
        session.add_all(captions)
        # (file row or id, photo id, stat, stored sidecar stamp, sidecar text)
        linked: list[tuple[File | int, int, FileStat, tuple[int, int] | None, SidecarText | None]] = []
        paths: list[str] = []
        for photo, (item, _, _) in zip(photos, fresh, strict=True):
            assert item.content is not None
            summary.new += 1
            for stat, row in item.content.files:
                paths.append(stat.path)
                text = item.sidecars.get(stat.path)
                if row is not None:
                    session.execute(update(File).where(File.id == row.id).values(
                        size=stat.size, mtime_ns=stat.mtime_ns, photo_id=photo.id))
                    linked.append((row.id, photo.id, stat, row.sidecar_stamp, text))
                else:
                    file = File(path=stat.path, size=stat.size, mtime_ns=stat.mtime_ns,
                                photo_id=photo.id)
                    session.add(file)
                    linked.append((file, photo.id, stat, None, text))
        session.flush()
        self._clear_errors(session, paths)
        human: set[int] = set()
        for file, photo_id, stat, stamp, text in linked:
            if stat.sidecar_stamp != stamp:
                file_id = file if isinstance(file, int) else file.id
                _, took = sidecars.apply(session, file_id, photo_id, stat, text)
                summary.sidecar_captions += took
                if took:
                    human.add(photo_id)
        return [(entry, photo.id, None if photo.id in human else caption.id)
                for entry, photo, caption in zip(fresh, photos, captions, strict=True)]

    def _replace_machine_caption(self, session, photo: Photo, text: str, captioner: Captioner) -> None:  # type: ignore[no-untyped-def]
        for caption in photo.captions:
            if caption.source == MACHINE:
                caption.text, caption.captioner = text, captioner.name
                caption.captioner_version = captioner.version
                caption.created_at = utcnow()
                break
        else:
            photo.captions.append(Caption(text=text, source=MACHINE, captioner=captioner.name,
                                          captioner_version=captioner.version))
        session.flush()

    # -- OCR (issue 10; the logic lives in indexer/ocr.py and captioners/ocr.py) -----------------
    def _check_ocr(self) -> None:
        """Refuse to start, changing nothing, when OCR is on but its engine is not installed.

        Only whether it is installed: importing it waits until a photo needs OCR (a broken
        install then stops the run in `_ocr_pass`, keeping the captions made so far)."""
        if self.ocr is not None:
            try:
                self.ocr.engine.check_installed()
            except OcrUnavailable as exc:
                raise IndexerError(str(exc)) from exc

    def _ocr_pass(self, summary: IndexSummary) -> None:
        """Read the text of photos whose OCR is missing or stale (decoding only for OCR), then
        drop vectors that do not embed their photo's current text (`_embed_missing` redoes them)."""
        if self.ocr is not None and not self.stop.is_set():
            try:
                report = self.ocr.run(self.stop, self.progress, self._remove_from_index)
            except OcrUnavailable as exc:  # e.g. the models do not load; captions are kept
                raise IndexerError(str(exc)) from exc
            summary.ocr_read, summary.ocr_with_text = report.read, report.with_text
            summary.ocr_seconds = report.seconds
        self._remove_from_index(ocr_stage.drop_stale_vectors(self.db))

    # -- vectors ----------------------------------------------------------------------------------
    def _embed_missing(self) -> int:
        """Embed every present photo that has no vector of our embedder (caption + OCR text;
        `indexer/embed.py`, shared with `capdex import`), adding them to the index as we go."""
        def added(vectors: list[tuple[int, np.ndarray]]) -> None:
            self._add_to_index(vectors)
            self._maybe_save()

        return embed_missing(self.db, self.embedder, self.settings.ocr_embed_words,
                             stop=self.stop, progress=self.progress, on_added=added)

    def _drop_orphans(self) -> None:
        """Photos with no file left leave the index (their captions stay, should they return)."""
        with self.db.session() as session:
            present = select(File.photo_id)
            orphan_vectors = session.scalars(
                select(Vector.id).where(Vector.photo_id.not_in(present))
            ).all()
            if orphan_vectors:
                session.execute(delete(Vector).where(Vector.id.in_(orphan_vectors)))
        self._remove_from_index(list(orphan_vectors))

    def _forget_vectors(self) -> None:
        """--reembed: drop every vector of our embedder; `_embed_missing` makes them anew.

        Dropping first (not replacing one by one) means a crash half-way leaves photos without
        vectors, which any later run embeds, never a silent mix of old and new vectors.
        """
        with self.db.session() as session:
            session.execute(delete(Vector).where(Vector.embedder == self.embedder.name))
        dim = self.embedder.dim
        self._index = VectorIndex(self.settings.index_path, self.embedder.name, dim,
                                  self.settings.exact_search_max,
                                  compress_above=self.settings.vector_compress_above,
                                  source=db_source(self.db, dim))
        self._dirty = True

    def _add_to_index(self, added: list[tuple[int, np.ndarray]]) -> None:
        if added:
            self.index.add(np.array([i for i, _ in added]), np.stack([v for _, v in added]))
            self._dirty = True

    def _remove_from_index(self, ids: list[int]) -> None:
        if ids:
            self.index.remove(ids)
            self._dirty = True

    def _maybe_save(self) -> None:
        if time.monotonic() - self._last_save >= self.settings.index_save_seconds:
            self._save()

    def _save(self, force: bool = False) -> None:
        """Save the index if it changed. With `force` (end of a full pass), also make sure the
        file holds the database's vectors of this embedder, even when the pass changed nothing.

        A pass that changed no vector checks that from the file's metadata and one count/max
        query (`index_is_current`); only when they disagree (a crash after a commit, another
        writer, a missing or truncated file, another embedder) is the index opened, repaired
        from the database and saved. Opening means importing FAISS and reading every id: most
        of an unchanged re-run's time in a big library before."""
        if force and self._index is None and not index_is_current(
                self.settings.index_path, self.db, self.embedder.name,
                self.settings.exact_search_max, self.settings.vector_compress_above):
            _ = self.index
        if self._index is not None and self._dirty:
            self._index.save(self.db)
            self._dirty = False
        self._last_save = time.monotonic()

    # -- errors -----------------------------------------------------------------------------------
    @staticmethod
    def _clear_errors(session, paths: list[str]) -> None:  # type: ignore[no-untyped-def]
        for start in range(0, len(paths), 500):
            session.execute(delete(IndexingError).where(
                IndexingError.path.in_(paths[start : start + 500])))

    @staticmethod
    def _record_error(session, path: str, reason: str, size: int | None, mtime_ns: int | None) -> None:  # type: ignore[no-untyped-def]
        existing = session.scalar(select(IndexingError).where(IndexingError.path == path))
        if existing is None:
            session.add(IndexingError(path=path, reason=reason, size=size, mtime_ns=mtime_ns))
        else:
            existing.reason, existing.size, existing.mtime_ns = reason, size, mtime_ns
