"""One pass's photos through the stages: read → decode → stages → embed + commit, overlapped.

Threads, and what each does:
- the read/decode pool (`decode_threads`): reads and hashes each new or changed file once
  (`capdex.indexer.read`), decodes new content and the stored photos a stage must redo, and
  writes thumbnails. A photo is decoded once, at the largest size among the stages that run on
  it; each stage gets its own view of that decode (`_decode`). Decoding runs two batches ahead
  of the model.
- the model thread (the caller's): resolves what each read file is (in scan order: touched,
  copy, move, new content), hands each decoded batch to the worker stages, runs the other
  stages (the captioner) on it and passes it to the writer.
- one thread per worker stage (OCR): runs it over batches as they come. At most
  `WORKER_QUEUE` batches wait for it, so memory stays flat; when it is the slower, it paces the
  model, never a commit.
- the writer thread: one transaction per batch — photos, files, stage results, errors and the
  vectors of every photo whose text changed (embedded inside it: `embed.VectorRefresh`) — and
  one for worker results that arrive after their batch was committed. At most `WRITE_QUEUE`
  batches wait for it.

A stop request (Ctrl-C, SIGTERM, a cancelled job) ends the pass after the batches in hand:
what is committed stays, every committed photo has its vector, and the next run does the rest.
"""

from __future__ import annotations

import itertools
import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any

from capdex.disk_full import is_disk_full
from capdex.images import ImageLoadError, decode_image, largest_hint
from capdex.indexer import sidecars
from capdex.indexer.decode import StageViews, decode_for
from capdex.indexer.embed import VectorRefresh
from capdex.indexer.isolate import Failed, isolate
from capdex.indexer.metadata import PhotoMetadata
from capdex.indexer.plan import KnownFile, NewContent, Resolver
from capdex.indexer.read import ReadBytes, hash_file, read_photo
from capdex.indexer.scan import FileStat, ScanProblem
from capdex.indexer.stage import Stage, StageInput
from capdex.indexer.thumbnails import has_thumbnail, write_thumbnail
from capdex.indexer.xmp import SidecarText
from capdex.paths import to_fs
from capdex.store import errors, photos
from capdex.store.photos import PhotoFacts

if TYPE_CHECKING:
    from capdex.indexer.pipeline import Indexer, IndexSummary

log = logging.getLogger(__name__)

#: Batches that may wait for the writer thread (embedding and committing).
WRITE_QUEUE = 4
#: Bytes of decoded views that may wait for a worker stage (~55 12-MP photos at OCR's 2000
#: px); beyond it photos are deferred, never making the model wait (see `_Worker`).
WORKER_BUDGET = 512 * 2**20
#: A worker stage runs this many photos at a time, so a stop request ends it within seconds.
WORKER_CHUNK = 4


@dataclass(eq=False)
class Item:
    """One photo going through the stages: new content (`content`), or a stored photo."""

    #: The file read, in stored form.
    path: str
    content_hash: str
    stages: list[Stage]
    photo_id: int | None = None
    content: NewContent | None = None
    #: Sidecar texts of the content's files that must be (re)read, by image path.
    sidecars: dict[str, SidecarText | None] = field(default_factory=dict)
    #: A stored photo's files, oldest first: the first holding its bytes is read.
    candidates: list[str] = field(default_factory=list)
    read: ReadBytes | None = None
    views: dict[str, Any] = field(default_factory=dict)
    metadata: PhotoMetadata | None = None
    #: Why the photo failed (its bytes cannot be decoded, or a required stage failed).
    error: str | None = None
    #: A stored photo none of whose files holds its bytes any more (the next run re-links).
    skipped: bool = False
    #: Stage name → result (or `Failed`), set by whichever thread ran the stage.
    results: dict[str, Any] = field(default_factory=dict)
    #: Stage names whose result is committed (touched by the writer thread only).
    written: set[str] = field(default_factory=set)
    #: How many of `content.files` the commit linked (later ones are linked after the pass).
    linked: int = 0

    def wants(self, stage: Stage) -> bool:
        return stage in self.stages and self.error is None and not self.skipped

    def input(self, stage: Stage, flow: Flow) -> StageInput:
        return StageInput(self.path, self.photo_id, self.views.get(stage.name), self.metadata,
                          lambda hint: flow.decode_larger(self, hint))


class _Stopped(Exception):
    """The run was asked to stop while waiting for a worker stage."""


class _Worker:
    """A worker stage's thread and its queue of batches, bounded by the memory their views hold.

    When the queue holds `WORKER_BUDGET` bytes, a further batch is not queued but deferred:
    the model never waits for a worker stage. Deferred photos (committed by then) get the
    stage once the other work is done, read and decoded again for it alone
    (`Flow.run`); with a fast stage (OCR behind a text gate) nothing is deferred.
    """

    def __init__(self, stage: Stage, flow: Flow) -> None:
        self.stage, self.flow = stage, flow
        self.batches: queue.Queue[list[Item] | None] = queue.Queue()
        self.error: BaseException | None = None
        self.done = self.total = 0
        self.seconds = 0.0
        self.queued = 0  # bytes of views waiting
        self.deferred: list[Item] = []
        self._lock = threading.Lock()
        self.thread = threading.Thread(target=self._loop, name=f"capdex-{stage.name}", daemon=True)
        self.thread.start()

    def put(self, batch: list[Item], *, wait: bool = False) -> None:
        """Queue a batch; over the budget, defer it (or with `wait`, wait for room)."""
        size = sum(_held(item, self.stage) for item in batch)
        while True:
            self.check()
            with self._lock:
                if self.queued == 0 or self.queued + size <= WORKER_BUDGET:
                    self.queued += size
                    self.total += len(batch)
                    self.batches.put(batch)
                    return
            if not wait:
                for item in batch:  # free its view now; it is decoded again when its turn comes
                    item.views.pop(self.stage.name, None)
                self.deferred += batch
                return
            if self.flow.stop.is_set():
                raise _Stopped
            time.sleep(0.05)

    def check(self) -> None:
        if self.error is not None:
            raise self.error

    def finish(self) -> None:
        """Let the thread end once its queue is done (at once, when stopping or failing)."""
        if self.flow.stop.is_set() or self.flow.abort.is_set():
            self._drain()
        self.batches.put(None)
        self.thread.join()
        self.check()

    def _drain(self) -> None:
        try:
            while True:
                self.batches.get_nowait()
        except queue.Empty:
            pass

    def _loop(self) -> None:
        try:
            while (batch := self.batches.get()) is not None:
                for start in range(0, len(batch), WORKER_CHUNK):
                    if self.flow.stop.is_set() or self.flow.abort.is_set():
                        break
                    chunk = batch[start : start + WORKER_CHUNK]
                    started = time.monotonic()
                    self.flow.run_stage(self.stage, chunk)
                    self.seconds += time.monotonic() - started
                    self.done += len(chunk)
                    self.flow.progress(self.stage.name, self.done, max(self.done, self.total))
                    self.flow.write(partial(self.flow.commit_late, self.stage, chunk))
                size = sum(_held(item, self.stage) for item in batch)
                for item in batch:
                    item.views.pop(self.stage.name, None)  # its memory, as soon as it is done
                    if not any(s.worker and s.name in item.views for s in item.stages):
                        item.read = None
                with self._lock:
                    self.queued -= size
        except BaseException as exc:  # noqa: BLE001 - re-raised in the model thread
            self.error = exc
            self._drain()


def _held(item: Item, stage: Stage) -> int:
    """Bytes an item holds for a worker stage: its view (and its file's bytes, if kept)."""
    view: Any = item.views.get(stage.name)
    size = 0
    if hasattr(view, "size") and hasattr(view, "mode"):  # a PIL image
        size = view.size[0] * view.size[1] * len(view.getbands())
    elif hasattr(view, "nbytes"):
        size = int(view.nbytes)
    if item.read is not None and item.read.data is not None:
        size += len(item.read.data)
    return size


class Flow:
    """The photos of one pass through the stages (see the module docstring)."""

    def __init__(self, indexer: Indexer, summary: IndexSummary, stages: list[Stage]) -> None:
        self.indexer, self.summary, self.stages = indexer, summary, stages
        self.settings, self.db, self.stop = indexer.settings, indexer.db, indexer.stop
        self.progress = indexer.progress
        self.lock = threading.Lock()
        self._writes: deque[Future[None]] = deque()
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="capdex-commit")
        self._pool = ThreadPoolExecutor(self.settings.decode_threads,
                                        thread_name_prefix="capdex-read")
        self._workers = {s.name: _Worker(s, self) for s in stages if s.worker}
        #: Hashes of new content met this run: a later file with them is part of that content,
        #: even once its photo is committed (classified as the store was before the run).
        self._new_hashes: set[str] = set()
        #: The item of each new content, by hash (for its files found after its commit).
        self.items_by_hash: dict[str, Item] = {}
        self.resolver: Resolver | None = None
        self.read_all = False  # every file to read was read (the pass was not cut short)
        self.committed = self.total = 0
        #: Photos expected through the model thread: files still to read count as new until
        #: read (the progress total; exact once reading ends).
        self.expected = 0
        #: Set when the pass fails: worker stages drop what they have queued.
        self.abort = threading.Event()

    # -- the whole flow ---------------------------------------------------------------------------
    def run(self, items: Iterable[Item]) -> None:
        """Take `items` through the stages; returns once everything is committed. Photos a
        worker stage could not take in time are then given to it alone (see `_Worker`)."""
        try:
            self._round(items, wait=False)
            for worker in self._workers.values():
                if worker.deferred and not self.stop.is_set():
                    self._drain_writes()  # their photos are committed: they have ids now
                    wanted = {i.photo_id: [worker.stage] for i in worker.deferred
                              if i.photo_id is not None}
                    worker.deferred = []
                    self._round(self.stored(wanted), wait=True)
        except _Stopped:
            pass
        except BaseException:
            self.abort.set()
            raise
        finally:
            self._pool.shutdown(wait=True, cancel_futures=True)
            try:
                for worker in self._workers.values():
                    worker.finish()
            finally:
                self._drain_writes()
                self._writer.shutdown(wait=True)
        for name, worker in self._workers.items():
            self.summary.stage_seconds[name] = worker.seconds
            if worker.total:
                self.progress(name, worker.done, worker.done)

    def _round(self, items: Iterable[Item], *, wait: bool) -> None:
        inline = [s for s in self.stages if not s.worker]
        for batch in self._decoded(items, self.indexer.batch_size):
            for worker in self._workers.values():
                worker.check()
            if self.stop.is_set():
                break
            for worker in self._workers.values():
                wanted = [item for item in batch if item.wants(worker.stage)]
                if wanted:
                    worker.put(wanted, wait=wait)
            if any(s.required for item in batch for s in item.stages):
                self.progress("caption", self.committed, max(self.committed, self.expected))
            for stage in inline:
                self.run_stage(stage, [item for item in batch if item.wants(stage)])
            for item in batch:
                for stage in inline:
                    item.views.pop(stage.name, None)
            self.write(partial(self.commit_batch, batch), wait=True)

    def write(self, task: Callable[[], None], wait: bool = False) -> None:
        """Queue `task` for the writer thread; with `wait`, first let the queue shrink to
        WRITE_QUEUE (re-raising the writer's error here)."""
        with self.lock:
            self._writes.append(self._writer.submit(task))
        while True:
            with self.lock:
                if not self._writes or not (self._writes[0].done() or (
                        wait and len(self._writes) > WRITE_QUEUE)):
                    return
                future = self._writes.popleft()
            future.result()

    def _drain_writes(self) -> None:
        while True:
            with self.lock:
                if not self._writes:
                    return
                future = self._writes.popleft()
            future.result()

    # -- reading and deciding what each file is ---------------------------------------------------
    def new_content(self, to_read: list[tuple[FileStat, KnownFile | None]],
                    problems: list[ScanProblem], gone: list[KnownFile],
                    sidecar_texts: dict[str, SidecarText | None]) -> Iterator[Item]:
        """Read every file in `to_read` once (hash, sidecar), resolve it in scan order, and yield
        an Item for each new content (its later identical files join it)."""
        self.resolver = Resolver(gone)
        window = 2 * self.indexer.batch_size + 2 * self.settings.decode_threads
        pending: deque[tuple[FileStat, KnownFile | None, Future[tuple[Any, ...]]]] = deque()
        todo = iter(to_read)
        done = 0
        self.expected += len(to_read)
        for stat, row in itertools.islice(todo, window):
            pending.append((stat, row, self._pool.submit(self._read_new, stat, row)))
        while pending:
            if self.stop.is_set():
                return
            stat, row, future = pending.popleft()
            following = next(todo, None)
            if following is not None:
                pending.append((*following, self._pool.submit(self._read_new, *following)))
            done += 1
            self.progress("hash", done, len(to_read))
            try:
                read, photo_id, text = future.result()
            except OSError as exc:
                self.expected -= 1
                reason = ("file disappeared before it could be read"
                          if isinstance(exc, FileNotFoundError)
                          else f"cannot read: {exc.strerror or exc}")
                problems.append(ScanProblem(stat.path, reason, stat.size, stat.mtime_ns))
                continue
            if text is not None or sidecars.needs_reading(stat, row.sidecar_stamp if row else None):
                sidecar_texts[stat.path] = text
            with self.lock:
                content = self.resolver.add(stat, row, read.content_hash, photo_id)
                if content is not None:
                    self._new_hashes.add(read.content_hash)
            if content is None:
                self.expected -= 1  # a known photo's bytes, or more of this run's new ones
            else:
                self.total += 1
                item = Item(stat.path, read.content_hash, list(self.stages), content=content,
                            read=read, sidecars=sidecar_texts)
                self.items_by_hash[read.content_hash] = item
                yield item
        self.read_all = True

    def _read_new(self, stat: FileStat, row: KnownFile | None) -> tuple[ReadBytes, int | None,
                                                                        SidecarText | None]:
        """In the pool: read and hash a file, look its bytes up, read its sidecar if needed."""
        read = read_photo(stat.fs_path)
        with self.lock:
            ours = read.content_hash in self._new_hashes
        photo_id = None
        if not ours:
            with self.db.read() as session:
                known = photos.photos_by_hash(session, [read.content_hash])
            photo_id = known.get(read.content_hash)
        if photo_id is not None:
            read.data = None  # bytes of a known photo: nothing to decode
        needs = sidecars.needs_reading(stat, row.sidecar_stamp if row else None)
        return read, photo_id, sidecars.read_one(stat) if needs else None

    def stored(self, wanted: dict[int, list[Stage]]) -> Iterator[Item]:
        """Items for stored photos some stages must redo (read and checked when decoded)."""
        ids = sorted(wanted)
        self.expected += sum(1 for p in ids if any(s.required for s in wanted[p]))
        for start in range(0, len(ids), 256):
            if self.stop.is_set():
                return
            chunk = ids[start : start + 256]
            with self.db.read() as session:
                paths = photos.paths_of(session, chunk)
                hashes = photos.hashes_of(session, chunk)
                facts = photos.facts_of(session, chunk)
            for photo_id in chunk:
                if photo_id not in paths:
                    self.expected -= any(s.required for s in wanted[photo_id])
                    continue
                self.total += 1
                item = Item(paths[photo_id][0], hashes[photo_id], wanted[photo_id],
                            photo_id=photo_id, candidates=paths[photo_id])
                item.metadata = _metadata_of(facts.get(photo_id))
                yield item

    # -- decoding ---------------------------------------------------------------------------------
    def _decoded(self, items: Iterable[Item], size: int) -> Iterator[list[Item]]:
        """Batches of decoded items, the next two batches decoding while one is in the model."""
        source = iter(items)
        pending: deque[list[Future[Item]]] = deque()

        def submit() -> bool:
            batch = list(itertools.islice(source, size))
            if batch:
                pending.append([self._pool.submit(self._decode, item) for item in batch])
            return bool(batch)

        for _ in range(2):
            submit()
        while pending:
            batch = [future.result() for future in pending.popleft()]
            submit()
            yield batch

    def _decode(self, item: Item) -> Item:
        """In the pool: decode once for the item's stages (`decode.decode_for`), read its EXIF
        and write its thumbnail; any failure is the item's error (or a stage's)."""
        new = item.content is not None
        thumb = self.settings.thumbnail_size
        make_thumb = new and not has_thumbnail(self.settings, item.content_hash)
        extra = [(1, thumb)] if make_thumb else []
        if largest_hint([*(s.size for s in item.stages), *extra]) is None:
            return item  # no stage needs pixels: they work from the stored facts
        try:
            got = self._decode_bytes(item, item.stages, extra)
        except ImageLoadError as exc:
            item.error = str(exc)
            return item
        except Exception as exc:  # one strange file must never stop a run
            if is_disk_full(exc):
                raise  # ...but a full disk stops it, blaming no photo
            item.error = f"could not read image ({type(exc).__name__}: {exc})"
            return item
        if got is None:
            item.skipped = True
            return item
        if new:
            item.metadata = got.metadata
        if make_thumb:
            try:
                write_thumbnail(self.settings, item.content_hash, got.view((1, thumb)))
            except Exception as exc:  # noqa: BLE001 - a missing thumbnail is made on demand
                log.warning("cannot write thumbnail for %s: %s", item.path, exc)
        item.views = got.views
        for stage in item.stages:
            reason = got.failed.get(stage.name)
            if reason is not None and stage.required:
                item.error = reason
            elif reason is not None:
                item.results[stage.name] = Failed(reason)
        if not any(s.enlarges for s in item.stages if s.name in item.views):
            item.read = None  # no stage will ask for a larger view: free the bytes
        return item

    def _decode_bytes(self, item: Item, stages: list[Stage], extra: list[Any]) -> StageViews | None:
        """The item's decode: from the bytes read (new content), or from the first of a stored
        photo's files that still holds its bytes (None: none does)."""
        if item.read is not None:
            return self._checked_decode(item, item.path, item.read, stages, extra)
        for path in item.candidates:
            try:
                read = read_photo(to_fs(path))
            except OSError:
                continue  # gone, or unreadable: its next run says so
            if read.content_hash != item.content_hash:
                continue  # changed since it was indexed: the next run re-links it
            item.path, item.read = path, read
            return self._checked_decode(item, path, read, stages, extra)
        return None

    def _checked_decode(self, item: Item, path: str, read: ReadBytes, stages: list[Stage],
                        extra: list[Any]) -> StageViews | None:
        got = decode_for(to_fs(path), read.data, stages, max_pixels=self.settings.max_image_pixels,
                         extra=extra)
        if read.data is None and hash_file(to_fs(path)) != item.content_hash:
            # too big to hold: decoded from the file, which changed after it was hashed
            raise ImageLoadError("the file changed while it was being read; it is indexed "
                                 "again when it stops changing")
        return got

    def decode_larger(self, item: Item, hint: Any) -> Any:
        """A stage's larger view: the item's bytes decoded again (read and checked again if
        they were not kept)."""
        read = item.read
        if read is None:
            read = read_photo(to_fs(item.path))
            if read.content_hash != item.content_hash:
                raise ImageLoadError("the file changed since it was read")
        image = decode_image(to_fs(item.path), max_pixels=self.settings.max_image_pixels,
                             size_hint=hint, data=read.data).image
        if read.data is None and hash_file(to_fs(item.path)) != item.content_hash:
            raise ImageLoadError("the file changed while it was being read")
        return image

    # -- stages -----------------------------------------------------------------------------------
    def run_stage(self, stage: Stage, items: list[Item]) -> None:
        """Run `stage` over `items`, isolating bad images; results go onto the items."""
        items = [item for item in items if stage.name not in item.results]
        if not items:
            return
        results = isolate(stage.run, [item.input(stage, self) for item in items],
                          describe=stage.describe_failure, fatal=stage.fatal)
        for item, result in zip(items, results, strict=True):
            if isinstance(result, Failed):
                log.warning("%s: %s", item.path, result.reason)
                if stage.required:
                    item.error = result.reason
            item.results[stage.name] = result

    # -- committing (writer thread) ---------------------------------------------------------------
    def commit_batch(self, batch: list[Item]) -> None:
        """One transaction: new photos and their files, stage results ready so far, errors, and
        the vectors of every photo whose text changed."""
        summary, stages = self.summary, self.stages
        new = [i for i in batch if i.content is not None and i.error is None]
        failed = [i for i in batch if i.content is not None and i.error is not None]
        stored = [i for i in batch if i.photo_id is not None and not i.skipped and i.error is None
                  and any(_ready(i, s) for s in i.stages)]
        if not (new or failed or stored):  # e.g. photos only OCR (still running) wants
            for item in batch:
                if item.content is None and item.error is not None:
                    self._stored_failure(item)
            self._report(batch)
            return
        self.indexer.embedder.warm_up()  # never load the model inside the transaction
        with self.db.session() as session:
            refresh = VectorRefresh(session, self.indexer.embedder, self.settings.ocr_embed_words)
            refresh.watch([i.photo_id for i in stored if i.photo_id is not None])
            if new:
                self._create_photos(session, new, refresh)
            for item in new + stored:
                for stage in stages:
                    self._write_result(session, item, stage)
            for item in stored:
                if any(s.required and s.name in item.written for s in item.stages):
                    summary.recaptioned += 1
            for item in failed:
                self._record_failure(session, item)
            for item in batch:
                if item.content is None and item.error is not None:
                    self._stored_failure(item)
            self.indexer.writer.apply(refresh.finish())
        summary.reembedded += refresh.reembedded
        self._report(batch)
        self.indexer.writer.maybe_save()
        self.indexer.save_looks(now=False)

    def _report(self, batch: list[Item]) -> None:
        """Progress of the photos the model thread passed on ("caption": what the required
        stages did; a batch only worker stages want is reported by them)."""
        counted = sum(1 for item in batch if any(s.required for s in item.stages))
        self.committed += counted
        if counted:
            self.progress("caption", self.committed, max(self.committed, self.expected))

    def commit_late(self, stage: Stage, items: list[Item]) -> None:
        """A worker stage's results whose batch was committed before they were ready."""
        todo = [i for i in items if i.photo_id is not None and stage.name in i.results
                and stage.name not in i.written and not isinstance(i.results[stage.name], Failed)]
        if not todo:
            for item in items:
                self._count_failure(item, stage)
            return
        self.indexer.embedder.warm_up()
        with self.db.session() as session:
            refresh = VectorRefresh(session, self.indexer.embedder, self.settings.ocr_embed_words)
            refresh.watch([i.photo_id for i in todo if i.photo_id is not None])
            for item in todo:
                self._write_result(session, item, stage)
            self.indexer.writer.apply(refresh.finish())
        self.summary.reembedded += refresh.reembedded
        for item in items:
            self._count_failure(item, stage)
        self.indexer.writer.maybe_save()

    def _write_result(self, session: Any, item: Item, stage: Stage) -> None:
        result = item.results.get(stage.name)
        if (result is None or isinstance(result, Failed) or stage.name in item.written
                or item.photo_id is None):
            return
        stage.write(session, item.photo_id, result, stage.version)
        item.written.add(stage.name)
        stage.tally(self.summary, result)

    def _count_failure(self, item: Item, stage: Stage) -> None:
        result = item.results.get(stage.name)
        if isinstance(result, Failed) and item.content is None and not stage.required:
            self.summary.stage_failures[stage.name] = \
                self.summary.stage_failures.get(stage.name, 0) + 1

    def _create_photos(self, session: Any, new: list[Item], refresh: VectorRefresh) -> None:
        """Photos of new content, their files (repointed or added) and sidecar captions."""
        with self.lock:  # files found later (after this commit) are linked after the pass
            files = [list(item.content.files) for item in new if item.content is not None]
            for item, found in zip(new, files, strict=True):
                item.linked = len(found)
        facts = [_facts(item, found[0][0].size) for item, found in zip(new, files, strict=True)]
        ids = photos.create_photos(session, facts)
        refresh.watch(ids, new=True)
        linked: list[tuple[int, int, FileStat, tuple[int, int] | None, SidecarText | None]] = []
        for item, photo_id, found in zip(new, ids, files, strict=True):
            item.photo_id = photo_id
            self.summary.new += 1
            for stat, row in found:
                text = item.sidecars.get(stat.path)
                if row is not None:
                    photos.repoint_file(session, row.id, stat.size, stat.mtime_ns, photo_id)
                    linked.append((row.id, photo_id, stat, row.sidecar_stamp, text))
                else:
                    file_id = photos.add_file(session, stat.path, stat.size, stat.mtime_ns,
                                              photo_id)
                    linked.append((file_id, photo_id, stat, None, text))
        errors.clear_errors(session, [stat.path for _, _, stat, _, _ in linked])
        for item in new:
            for stage in self.stages:  # the required stages first: the photo needs its caption
                if stage.required:
                    self._write_result(session, item, stage)
        for file_id, photo_id, stat, stamp, text in linked:
            if stat.sidecar_stamp != stamp:
                self.summary.sidecar_captions += sidecars.apply(session, file_id, photo_id,
                                                                stat, text)

    def _record_failure(self, session: Any, item: Item) -> None:
        """New content that cannot be indexed: an error for each of its files (a file whose
        old bytes were a photo points at nothing now: its row goes)."""
        with self.lock:
            assert item.content is not None  # `failed` holds new content only
            found = list(item.content.files)
            item.linked = len(found)
        self.summary.failed += 1
        self.summary.failures.append((item.path, item.error or ""))
        for stat, row in found:
            if row is not None:
                photos.delete_files(session, [row.id])
            errors.record_error(session, stat.path, item.error or "", stat.size, stat.mtime_ns)


    def _stored_failure(self, item: Item) -> None:
        """A stored photo that cannot be decoded again: it keeps what it has."""
        log.warning("%s: %s", item.path, item.error)
        if any(s.required for s in item.stages):  # --recaption asked for it: say so
            self.summary.failed += 1
            self.summary.failures.append((item.path, item.error or ""))
        for stage in item.stages:
            if not stage.required:
                self.summary.stage_failures[stage.name] = \
                    self.summary.stage_failures.get(stage.name, 0) + 1


def _ready(item: Item, stage: Stage) -> bool:
    """A result of `stage` waits to be committed for `item`."""
    result = item.results.get(stage.name)
    return result is not None and not isinstance(result, Failed) and stage.name not in item.written


def _facts(item: Item, size: int) -> PhotoFacts:
    meta = item.metadata
    if meta is None:
        return PhotoFacts(item.content_hash, size)
    return PhotoFacts(item.content_hash, size, meta.width, meta.height, meta.taken_at,
                      meta.camera_make, meta.camera_model, meta.lens, meta.latitude,
                      meta.longitude)


def _metadata_of(facts: PhotoFacts | None) -> PhotoMetadata | None:
    if facts is None or facts.width is None or facts.height is None:
        return None
    return PhotoMetadata(facts.width, facts.height, facts.taken_at, facts.camera_make,
                         facts.camera_model, facts.lens, facts.latitude, facts.longitude)
