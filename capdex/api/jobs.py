"""Index jobs started over HTTP: one background thread at a time, with progress people can poll.

Paths must lie under the configured photo roots (after resolving symlinks and `..`), so a request
can never make the server read folders its owner did not offer.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from capdex.disk_full import DiskFull
from capdex.paths import is_under

if TYPE_CHECKING:
    from capdex.embedder import Embedder
    from capdex.indexer.pipeline import Indexer
    from capdex.settings import Settings
    from capdex.store.db import Database

log = logging.getLogger(__name__)

JobState = Literal["running", "done", "failed", "cancelled"]
#: Finished jobs kept for GET /api/jobs/{id}; older ones are forgotten.
KEEP_FINISHED = 50


class JobError(Exception):
    """A job cannot start; `status` is the HTTP status that says why."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass
class Job:
    """One index or re-caption run and how far it got."""

    id: str
    kind: Literal["index", "recaption"]
    captioner: str
    paths: list[str] = field(default_factory=list)
    photo_ids: list[int] = field(default_factory=list)
    recaption: bool = False
    state: JobState = "running"
    stage: str = "starting"
    done: int = 0
    total: int = 0
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    finished_at: datetime | None = None
    summary: dict[str, object] | None = None
    error: str | None = None
    cancel: threading.Event = field(default_factory=threading.Event, repr=False)
    _stages: dict[str, tuple[int, int]] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def progress(self, stage: str, done: int, total: int) -> None:
        """Called by the run's threads; the job shows the stage that matters most while it is
        unfinished — captioning, then the worker stages (OCR), then embedding, then reading —
        so OCR running beside captioning does not hide how far captioning got."""
        with self._lock:
            self._stages[stage] = (done, total)
            open_ = [s for s, (d, t) in self._stages.items() if d < t]
            shown = min(open_, key=_rank) if open_ else stage
            self.stage, (self.done, self.total) = shown, self._stages[shown]


def _rank(stage: str) -> int:
    order = {"caption": 0, "embed": 2, "hash": 3, "scan": 4}
    return order.get(stage, 1)  # a worker stage (ocr, ...)


def check_paths(requested: list[str], roots: list[Path]) -> list[str]:
    """The requested paths made absolute, each under a photo root; JobError otherwise.

    A path must be inside a root both as written (normalised) and after resolving symlinks, so
    neither `..` nor a symlink can lead out of the roots.
    """
    if not roots:
        raise JobError(403, "indexing over HTTP is off: no photo roots are configured "
                            "(CAPDEX_PHOTO_ROOTS, or `capdex serve --photo-root DIR`)")
    if not requested:
        return [str(root) for root in roots]
    checked = []
    for raw in requested:
        if "\x00" in raw or not raw.strip() or not _encodable(raw):
            raise JobError(422, f"not a usable path: {raw!r}")
        if not os.path.isabs(raw):
            raise JobError(422, f"{raw}: give an absolute path under a photo root")
        path = os.path.normpath(raw)
        if not (_inside(path, [str(r) for r in roots])
                and _inside(os.path.realpath(path), [os.path.realpath(r) for r in roots])):
            raise JobError(403, f"{raw}: not under a photo root ({', '.join(map(str, roots))})")
        if not os.path.exists(path):
            raise JobError(422, f"{raw}: no such file or folder")
        checked.append(path)
    return checked


def _encodable(path: str) -> bool:
    try:
        os.fsencode(path)
    except UnicodeError:
        return False
    return True


def _inside(path: str, roots: list[str]) -> bool:
    return any(is_under(path, root) for root in roots)


class JobRunner:
    """Runs at most one indexer at a time in a background thread; remembers recent jobs."""

    def __init__(self, settings: Settings, db: Database, embedder: Embedder) -> None:
        self.settings = settings
        self.db = db
        self.embedder = embedder
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._current: Job | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    # -- starting ---------------------------------------------------------------------------------
    def start_index(self, paths: list[str], captioner: str | None, recaption: bool) -> Job:
        checked = check_paths(paths, self.settings.photo_roots)
        job = Job(self._new_id(), "index", captioner or self.settings.captioner, paths=checked,
                  recaption=recaption)
        return self._start(job)

    def start_recaption(self, photo_ids: list[int], captioner: str | None) -> Job:
        job = Job(self._new_id(), "recaption", captioner or self.settings.captioner,
                  photo_ids=list(photo_ids), recaption=True)
        return self._start(job)

    def _start(self, job: Job) -> Job:
        from capdex.captioners import CaptionerError, registry

        from capdex.api.captioner_choices import missing

        try:
            registry.captioner_class(job.captioner)
        except CaptionerError as exc:
            raise JobError(422, str(exc)) from exc
        except ImportError as exc:
            raise JobError(422, f"captioner {job.captioner!r} cannot be loaded: {exc}") from exc
        need = missing(job.captioner, self.settings)
        if need is not None:  # refused now with the reason, not a traceback from the job
            raise JobError(422, f"captioner {job.captioner!r} cannot run here: {need}")
        with self._lock:
            if self._current is not None:
                raise JobError(409, f"job {self._current.id} is still running; one job at a "
                                    f"time (poll GET /api/jobs/{self._current.id})")
            self._check_data_dir_free()
            self._current = job
            self._remember(job)
            self._thread = threading.Thread(target=self._run, args=(job,), daemon=True,
                                            name=f"capdex-job-{job.id}")
            self._thread.start()
        return job

    def _check_data_dir_free(self) -> None:
        """Refuse at once when another process (a `capdex index`) holds the data dir."""
        from capdex.index_lock import index_lock_free

        if not index_lock_free(self.settings):
            raise JobError(409, "another capdex index run is using this data dir; "
                                "try again when it ends")

    def _new_id(self) -> str:
        return uuid.uuid4().hex[:12]

    def _remember(self, job: Job) -> None:
        self._jobs[job.id] = job
        finished = [j for j in self._jobs.values() if j.finished_at is not None]
        for old in finished[: max(0, len(finished) - KEEP_FINISHED)]:
            del self._jobs[old.id]

    # -- running ----------------------------------------------------------------------------------
    def _run(self, job: Job) -> None:
        from capdex.captioners import CaptionerError, registry
        from capdex.indexer.pipeline import Indexer, IndexerError

        started = time.monotonic()
        captioner = indexer = None
        try:
            settings = self.settings.model_copy(update={"captioner": job.captioner})
            captioner = registry.create(job.captioner, settings)
            # A cancel sets the run's stop event: it ends after the batches in hand, with every
            # committed photo searchable, and saves the vector index.
            indexer = Indexer(settings, self.db, captioner=captioner, embedder=self.embedder,
                              recaption=job.recaption, progress=job.progress, stop=job.cancel)
            if job.kind == "index":
                summary = indexer.run(job.paths)
            else:
                summary = indexer.recaption_photos(job.photo_ids)
            if job.cancel.is_set():
                job.state, job.error = "cancelled", "stopped on request; finished batches are kept"
            else:
                job.summary = summary.as_dict()
                job.state = "done"
        except (CaptionerError, IndexerError, DiskFull) as exc:  # said in the job's error
            log.warning("job %s failed: %s", job.id, exc)
            job.state, job.error = "failed", str(exc) or type(exc).__name__
            if not isinstance(exc, IndexerError):
                _save_index(indexer)
        except Exception as exc:  # a failed job reports why instead of vanishing
            log.exception("job %s failed", job.id)
            job.state, job.error = "failed", str(exc) or type(exc).__name__
            if not isinstance(exc, IndexerError):  # IndexerError: it never started
                _save_index(indexer)
        finally:
            if captioner is not None:
                captioner.close()
            job.finished_at = datetime.now(UTC)
            job.stage = job.state
            log.info("job %s %s in %.1fs", job.id, job.state, time.monotonic() - started)
            with self._lock:
                self._current = None

    # -- reading and stopping ---------------------------------------------------------------------
    def get(self, job_id: str) -> Job | None:
        with self._lock:
            return self._jobs.get(job_id)

    @property
    def current(self) -> Job | None:
        return self._current

    def recent(self, limit: int = 10) -> list[Job]:
        with self._lock:
            return list(reversed(self._jobs.values()))[:limit]

    def cancel(self, job_id: str) -> Job | None:
        job = self.get(job_id)
        if job is not None and job.state == "running":
            job.cancel.set()
        return job

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the running job (if any); True when none is running afterwards."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
        return self._current is None

    def shutdown(self, timeout: float = 30.0) -> None:
        """Ask the running job to stop at its next batch and wait a while for it."""
        job = self._current
        if job is not None:
            job.cancel.set()
        self.wait(timeout)


def _save_index(indexer: Indexer | None) -> None:
    """After a failed run, save the vectors it committed so searches see them now, not only
    after the next run repairs the index file from the database."""
    if indexer is None:
        return
    try:
        indexer.writer.save()
    except Exception:  # the next run repairs the index from the database
        log.exception("could not save the index after a failed job")
