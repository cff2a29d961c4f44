"""An index run: scan → plan → read → decode → stages → embed + commit (docs/indexing.md).

- scan (`scan.py`) walks the roots and stats each image; plan (`plan.py`) compares that with
  the store: unchanged files are not read, gone files are noted;
- read (`read.py`) reads each new or changed file once: the bytes are hashed, and the hash
  says what it is (the same bytes under a new stamp, a copy, a move, or new content);
- decode and stages (`flow.py`, `stages/`) run each stage on the photos that need it — every
  stage on new content, a stage alone on stored photos whose results are missing or stale;
- each batch is committed in one transaction (photo, files, stage results, vectors, errors)
  through the writer thread; the vector index is kept by one `IndexWriter`.

So an interrupted run — Ctrl-C, a crash, `kill -9` — keeps what it finished and the next run
does only the rest; the FAISS file is a cache repaired from the database. One run (or watcher)
at a time per data dir holds the index lock; searches and people's caption edits go on
meanwhile. Watch mode runs the very same pass, limited to the paths that changed.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import chain
from pathlib import Path
from typing import Any

from sqlalchemy import select

from capdex.atomic import is_stale_temp_file, remove_stale_temp_files
from capdex.captioners import Captioner
from capdex.captioners.ocr import OcrUnavailable
from capdex.disk_full import DiskFull, is_disk_full
from capdex.embedder import Embedder, get_embedder
from capdex.index_lock import DataDirBusy, index_lock
from capdex.indexer import sidecars
from capdex.indexer.embed import VectorRefresh, photos_needing_vectors, refresh_vectors
from capdex.indexer.flow import Flow
from capdex.indexer.plan import KnownFile, plan_changes
from capdex.indexer.scan import FileStat, ScanProblem, scan
from capdex.indexer.stage import Stage
from capdex.indexer.stages import STAGES
from capdex.indexer.stages.caption import CaptionStage
from capdex.indexer.watch import ChangeWatcher, WatchError, scopes_for
from capdex.indexer.xmp import SidecarText
from capdex.paths import to_store, under
from capdex.settings import Settings
from capdex.store import errors, looks, photos
from capdex.store.db import Database
from capdex.store.index_writer import IndexWriter, VectorChange
from capdex.store.models import File, Vector
from capdex.store.vectors import VectorIndex

log = logging.getLogger(__name__)

#: (stage, done, total) — stages are "scan", "hash", "caption", "ocr" (and any worker stage's
#: name) and "embed". Called from the run's threads.
ProgressCallback = Callable[[str, int, int], None]


@contextmanager
def _stop_when_disk_full() -> Iterator[None]:
    """A full disk, wherever it surfaced (a commit, a model's cache, the index file), ends the
    run as `DiskFull`: one message, no photo blamed (`isolate` never records one for it)."""
    try:
        yield
    except DiskFull:
        raise
    except Exception as exc:
        if is_disk_full(exc):
            raise DiskFull(exc) from exc
        raise


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
    faces_scanned: int = 0
    faces_found: int = 0
    #: Photos the place stage looked at, and those it named a place for (the rest: no GPS).
    places_read: int = 0
    places_found: int = 0
    interrupted: bool = False
    seconds: float = 0.0
    failures: list[tuple[str, str]] = field(default_factory=list)
    #: Seconds each worker stage ran, and photos a (non-required) stage failed on.
    stage_seconds: dict[str, float] = field(default_factory=dict)
    stage_failures: dict[str, int] = field(default_factory=dict)

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
        if self.faces_scanned:
            text += f"; {self.faces_found} face(s) in {self.faces_scanned} photo(s) looked at"
        if self.places_read:
            text += f"; places for {self.places_found} of {self.places_read} photo(s)"
        return text + ("; interrupted" if self.interrupted else "")

    @property
    def did_something(self) -> bool:
        """Whether anything changed (watch mode prints only batches that did)."""
        return bool(self.new or self.changed or self.moved or self.copied or self.removed
                    or self.recaptioned or self.reembedded or self.failures
                    or self.sidecar_captions or self.sidecars_written or self.ocr_read
                    or self.faces_scanned or self.places_read)

    def as_dict(self) -> dict[str, object]:
        skip = ("failures", "stage_seconds", "stage_failures")
        data = {k: v for k, v in self.__dict__.items() if k not in skip}
        data["seconds"] = round(self.seconds, 3)
        data["ocr_seconds"] = round(self.ocr_seconds, 3)
        return data


class Indexer:
    """Runs index passes over folders into one data dir (one run at a time per data dir).

    Stage options (`captioner=`, `recaption=`, `ocr=`, `ocr_engine=`, and those of stages
    added later) are passed to each stage's `create` (`capdex.indexer.stages`).
    """

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
        **stage_options: Any,
    ) -> None:
        self.settings = settings
        self.db = db
        self.embedder = embedder or get_embedder(settings)
        self.reembed = reembed
        self.write_xmp = write_xmp
        self.retry_failed = retry_failed
        self.progress = progress or (lambda stage, done, total: None)
        #: Set it (e.g. from a Ctrl-C handler) to end the run after the batches in hand.
        self.stop = stop or threading.Event()
        #: The folders (or files) this run indexes; symlinks out of them are not followed.
        self._roots: list[str] | None = None
        if captioner is None:
            captioner = _default_captioner(settings)
        options = {"captioner": captioner, "recaption": recaption, **stage_options}
        created = (cls.create(settings, options) for cls in STAGES)
        self.stages: list[Stage] = [stage for stage in created if stage is not None]
        #: The one owner of the vector index's upkeep for this run.
        self.writer = IndexWriter.for_data_dir(settings, db, self.embedder.name,
                                             lambda: self.embedder.dim)
        self._looks_writer: IndexWriter | None = None

    def stage(self, name: str) -> Stage | None:
        return next((s for s in self.stages if s.name == name), None)

    @property
    def ocr(self) -> Stage | None:
        """The OCR stage, None when OCR is off (`ocr=False`, settings.ocr)."""
        return self.stage("ocr")

    @property
    def captioner(self) -> Captioner:
        stage = self.stage("caption")
        assert isinstance(stage, CaptionStage), "every run has a caption stage"
        return stage.captioner

    @property
    def batch_size(self) -> int:
        return self.settings.batch_size or self.captioner.batch_size

    @property
    def index(self) -> VectorIndex:
        return self.writer.index

    def _warm_up(self) -> None:
        """Load the captioner in a background thread while files are read, so the first batch
        does not wait for it. Any error is left for first use to raise.

        Not the embedder: the writer thread loads it before the first commit (`Flow`), while the
        model captions the next batch. Loading it (its runtime's imports mostly hold the GIL)
        beside the captioner's load and first batch delayed the first caption (issue 17).
        """
        models = [s for s in self.stages if not s.worker]

        def warm() -> None:
            try:
                for stage in models:
                    stage.warm_up()
            except Exception as exc:  # noqa: BLE001 - reported properly when the model is used
                log.debug("warming up the models failed: %s", exc)

        threading.Thread(target=warm, name="capdex-warm-up", daemon=True).start()

    def _library_is_empty(self) -> bool:
        with self.db.read() as session:
            return session.scalars(select(File.id).limit(1)).first() is None

    # -- runs -------------------------------------------------------------------------------------
    def run(self, roots: Iterable[str | Path]) -> IndexSummary:
        """One full pass over `roots`: index what is new or changed, forget what is gone."""
        roots = self._check_roots(roots)
        with self._exclusive(), _stop_when_disk_full():
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
        with self._exclusive(), _stop_when_disk_full(), self._watching(roots, poll) as watcher:
            try:
                report(self._pass(roots, roots, full=True))
                while not self.stop.is_set():
                    changed = watcher.next_batch(self.stop, self.settings.watch_debounce_seconds,
                                                 self.settings.watch_max_delay_seconds)
                    if changed:
                        self._watch_batch(changed, report)
            finally:
                self.writer.save()

    def _watch_batch(self, changed: list[str], report: Callable[[IndexSummary], None]) -> None:
        """Index one batch of changed paths; a failure is logged and watching goes on."""
        scopes = scopes_for(changed)
        present = [p for p in scopes if os.path.lexists(p)]
        try:
            report(self._pass(present, scopes, full=False))
        except Exception as exc:
            if is_disk_full(exc):  # one line, no traceback: the next change tries again
                log.error("%s", exc if isinstance(exc, DiskFull) else DiskFull(exc))
                return
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
        """The roots as absolute OS paths (the run's bounds for symlinks: see `scan`)."""
        checked = [os.path.abspath(os.fspath(r)) for r in roots]
        for root in checked:
            if not os.path.exists(root):
                raise IndexerError(f"{to_store(root)}: no such file or folder")
        self._roots = checked
        return checked

    @contextmanager
    def _exclusive(self) -> Iterator[None]:
        """Hold the data dir's index lock (refusing a second indexer) and clean up after crashes."""
        try:
            with index_lock(self.settings):
                # Only an indexer writes temp files under the data dir except the brief, locked
                # index saves (whose writers are alive, so their files are not "stale").
                remove_stale_temp_files(self.settings.data_dir, recursive=True)
                yield
        except DataDirBusy as exc:
            raise IndexerError(str(exc)) from exc

    def recaption_photos(self, photo_ids: Iterable[int]) -> IndexSummary:
        """Caption these stored photos again with this indexer's captioner, whatever made their
        current machine caption (a person asked for it; human captions still win)."""
        caption = self.stage("caption")
        assert caption is not None
        with self._exclusive():
            started = time.monotonic()
            summary = IndexSummary()
            flow = Flow(self, summary, [caption])
            self._flow(flow, flow.stored({photo_id: [caption] for photo_id in set(photo_ids)}))
            self._refresh_vectors(summary)
            self.writer.save()
            self.save_looks()
            summary.seconds = time.monotonic() - started
            return summary

    # -- one pass ---------------------------------------------------------------------------------
    def _pass(self, scan_roots: list[str], scopes: list[str], full: bool) -> IndexSummary:
        """Bring the store in line with the disk under `scopes` (OS paths), scanning `scan_roots`
        (the scopes that still exist). `full` passes also re-embed when asked."""
        started = time.monotonic()
        summary = IndexSummary()
        self._check_stages()
        # A library's first run: whatever the scan finds is new, so the model loads while it
        # scans (issue 17). Later runs wait for the plan: an unchanged re-run loads no model.
        warming = self._library_is_empty()
        if warming:
            self._warm_up()
        found = scan(scan_roots, exclude=[self.settings.data_dir], within=self._roots,
                     follow_links_out=self.settings.follow_symlinks_out)
        for temp in found.temp_files:  # left in photo folders by a killed sidecar write
            if is_stale_temp_file(os.path.basename(temp)):
                Path(temp).unlink(missing_ok=True)
        summary.scanned = len(found.files)
        self.progress("scan", summary.scanned, summary.scanned)

        stored_scopes = [to_store(s) for s in scopes]
        with self.db.engine.connect() as conn:
            known = {row.path: row for row in map(KnownFile._make,
                                                   photos.files_under(conn, stored_scopes))}
            failed = errors.errors_under(conn, stored_scopes)
        vanished: list[str] = []  # errors of deleted files
        if failed:
            seen = {f.path for f in found.files} | {p.path for p in found.problems}
            vanished = [path for path in failed if path not in seen]
        if self.retry_failed:
            failed = {}
        plan = plan_changes(found.files, known, failed)
        if not warming and any(row is None for _, row in plan.to_hash):  # most likely new photos
            self._warm_up()
        # Problems seen before (same path, size and mtime) are still failing, not news.
        problems = [p for p in found.problems if failed.get(p.path) != (p.size, p.mtime_ns)]
        summary.unchanged = plan.unchanged
        summary.failed += len(plan.still_failing) + len(found.problems) - len(problems)

        if full and self.reembed:
            self._forget_vectors()
        texts: dict[str, SidecarText | None] = {}
        flow = Flow(self, summary, self.stages)
        pending = self._pending()
        self._flow(flow, chain(flow.new_content(plan.to_hash, problems, plan.gone, texts),
                               flow.stored(pending)))
        resolution = flow.resolver.result if flow.resolver else None
        if resolution is not None:
            summary.moved, summary.copied = len(resolution.moves), len(resolution.copies)
            summary.changed = len(resolution.relinked) + sum(
                1 for c in resolution.new_content.values() for _, row in c.files if row is not None)
        gone = plan.gone if flow.read_all else []  # cut short: a file may have moved unseen
        summary.removed = len(gone) - summary.moved if gone else 0
        self._apply_links(flow, gone, plan.sidecar_changed, problems, vanished, texts, summary)
        summary.failed += len(problems)
        summary.failures.extend((p.path, p.reason) for p in problems)

        if not self.stop.is_set():
            self._refresh_vectors(summary)
        self._drop_orphans()
        if self.write_xmp and not self.stop.is_set():
            report = sidecars.write_machine_captions(self.db, under(File.path, *stored_scopes))
            summary.sidecars_written, summary.sidecars_failed = report.written, report.failed
        self.writer.save(check=full)
        self.save_looks()
        summary.interrupted = self.stop.is_set()
        summary.seconds = time.monotonic() - started
        return summary

    def _check_stages(self) -> None:
        """Refuse to start, changing nothing, when a stage cannot run here (e.g. OCR is on but
        its engine is not installed). Cheap: loading models waits until a photo needs them."""
        for stage in self.stages:
            try:
                stage.check()
            except self._unavailable as exc:
                raise IndexerError(str(exc)) from exc

    @property
    def _unavailable(self) -> tuple[type[BaseException], ...]:
        """What the optional stages raise when they cannot run at all (OCR's, faces')."""
        return (OcrUnavailable, *(e for s in self.stages if not s.required for e in s.fatal))

    def _pending(self) -> dict[int, list[Stage]]:
        """{stored photo id: the stages it needs} (missing or stale results)."""
        wanted: dict[int, list[Stage]] = {}
        with self.db.read() as session:
            for stage in self.stages:
                for photo_id in stage.pending(session):
                    wanted.setdefault(photo_id, []).append(stage)
        return wanted

    def _flow(self, flow: Flow, items: Iterable[Any]) -> None:
        try:
            flow.run(items)
        except self._unavailable as exc:  # e.g. the models do not load; captions are kept
            raise IndexerError(str(exc)) from exc
        finally:
            flow.summary.ocr_seconds = flow.summary.stage_seconds.get("ocr", 0.0)

    def _apply_links(self, flow: Flow, gone: list[KnownFile],
                     sidecar_changed: list[tuple[FileStat, KnownFile]],
                     problems: list[ScanProblem], vanished: list[str],
                     texts: dict[str, SidecarText | None], summary: IndexSummary) -> None:
        """One transaction for everything that needs no model: same bytes under a new stamp,
        copies, moves, removals, files of new content found after its photo was committed,
        errors, and captions from new or changed sidecars (re-embedding what they change)."""
        if sidecar_changed:
            with ThreadPoolExecutor(self.settings.decode_threads) as pool:
                texts.update(sidecars.read_all([s for s, _ in sidecar_changed], pool))
        resolution = flow.resolver.result if flow.resolver else None
        # (file id, photo id, stat, stored sidecar stamp) of every file linked to a photo.
        linked: list[tuple[int, int, FileStat, tuple[int, int] | None]] = []
        late: list[tuple[FileStat, KnownFile | None, int]] = []
        failed_late: list[tuple[FileStat, KnownFile | None, str]] = []
        if resolution is not None:
            for content in resolution.new_content.values():
                item = flow.items_by_hash.get(content.content_hash)
                if item is None or item.linked >= len(content.files):
                    continue
                for stat, row in content.files[item.linked:]:
                    if item.photo_id is not None:
                        late.append((stat, row, item.photo_id))
                    elif item.error is not None:
                        failed_late.append((stat, row, item.error))
        if not (resolution or gone or sidecar_changed or problems or vanished or late
                or failed_late):
            return
        embedder = self.embedder
        touched_photos = {row.photo_id for _, row in sidecar_changed}
        with self.db.session() as session:
            refresh = VectorRefresh(session, embedder, self.settings.ocr_embed_words)
            if resolution is not None:
                for stat, row in resolution.touched:
                    photos.repoint_file(session, row.id, stat.size, stat.mtime_ns)
                    linked.append((row.id, row.photo_id, stat, row.sidecar_stamp))
                for stat, row, photo_id in resolution.relinked:
                    photos.repoint_file(session, row.id, stat.size, stat.mtime_ns, photo_id)
                    linked.append((row.id, photo_id, stat, row.sidecar_stamp))
            photos.delete_files(session, [row.id for row in gone])
            if resolution is not None:
                for stat, photo_id in resolution.copies + resolution.moves:
                    file_id = photos.add_file(session, stat.path, stat.size, stat.mtime_ns,
                                              photo_id)
                    linked.append((file_id, photo_id, stat, None))
            for stat, row, photo_id in late:
                if row is not None:
                    photos.repoint_file(session, row.id, stat.size, stat.mtime_ns, photo_id)
                    linked.append((row.id, photo_id, stat, row.sidecar_stamp))
                else:
                    file_id = photos.add_file(session, stat.path, stat.size, stat.mtime_ns,
                                              photo_id)
                    linked.append((file_id, photo_id, stat, None))
            linked += [(row.id, row.photo_id, stat, row.sidecar_stamp)
                       for stat, row in sidecar_changed]
            errors.clear_errors(session, [s.path for _, _, s, _ in linked]
                                + [r.path for r in gone] + vanished)
            sidecar_photos = {photo_id for _, photo_id, stat, stamp in linked
                              if stat.sidecar_stamp != stamp} | touched_photos
            refresh.watch(sidecar_photos)
            for file_id, photo_id, stat, stamp in linked:
                if stat.sidecar_stamp != stamp:
                    summary.sidecar_captions += sidecars.apply(session, file_id, photo_id, stat,
                                                               texts.get(stat.path))
            for stat, row, reason in failed_late:
                if row is not None:
                    photos.delete_files(session, [row.id])
                errors.record_error(session, stat.path, reason, stat.size, stat.mtime_ns)
            for problem in problems:
                errors.record_error(session, problem.path, problem.reason, problem.size,
                                    problem.mtime_ns)
            self.writer.apply(refresh.finish())

    # -- vectors ----------------------------------------------------------------------------------
    def save_looks(self, *, now: bool = True) -> None:
        """Bring the looks index (similar photos) in line with the looks the stages stored, if
        they changed: one count/max query when not. Without `now`, every `index_save_seconds`."""
        stage = self.stage("looks")
        if stage is None:
            return
        if self._looks_writer is None:
            dim = looks.dim_of(self.db, stage.version)
            if dim is None:
                return  # none stored yet
            self._looks_writer = IndexWriter.for_looks(self.settings, self.db, stage.version, dim)
        self._looks_writer.catch_up(now=now)

    def _refresh_vectors(self, summary: IndexSummary) -> None:
        """Embed every present photo whose vector of our embedder is missing or stale (an
        embedder change, `--reembed`, an orphan's file back, an older capdex's leftovers)."""
        wanted = photos_needing_vectors(self.db, self.embedder.name)
        if not wanted:
            return

        def changed(change: VectorChange) -> None:
            self.writer.apply(change)
            self.writer.maybe_save()

        summary.reembedded += refresh_vectors(
            self.db, self.embedder, wanted, self.settings.ocr_embed_words, stop=self.stop,
            progress=self.progress, on_change=changed)

    def _drop_orphans(self) -> None:
        """Photos with no file left leave the index (their captions stay, should they return)."""
        with self.db.session() as session:
            self.writer.apply(VectorChange(removed=photos.drop_orphan_vectors(session)))

    def _forget_vectors(self) -> None:
        """--reembed: drop every vector of our embedder; `_refresh_vectors` makes them anew.

        Dropping first (not replacing one by one) means a crash half-way leaves photos without
        vectors, which any later run embeds, never a silent mix of old and new vectors.
        """
        from sqlalchemy import delete

        with self.db.session() as session:
            session.execute(delete(Vector).where(Vector.embedder == self.embedder.name))
        self.writer.start_over()


def _default_captioner(settings: Settings) -> Captioner | None:
    """The configured captioner, made once (not loaded) so every stage that uses it (caption,
    looks) shares one model; None when it cannot be made: the caption stage reports why."""
    from capdex.captioners import registry

    try:
        return registry.create(settings.captioner, settings)
    except Exception:  # noqa: BLE001 - reported by the caption stage, as without sharing
        return None
