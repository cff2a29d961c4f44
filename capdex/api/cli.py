"""The `capdex` command: index folders, search them, serve the API, inspect the store."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from capdex.api.cli_common import (
    MAX_ID,
    CaptionerOpt,
    DataDir,
    EndpointOpt,
    JsonOpt,
    ModelOpt,
    ModelPathOpt,
    _check_captioner,
    _database,
    _fail,
    _indexed_database,
    _NoIndex,
    _open_indexed,
    _print_json,
    _settings,
)
from capdex.api.cli_help import PlainGroup

if TYPE_CHECKING:  # imported where used: `capdex --help` stays fast
    import threading
    from collections.abc import Callable, Sequence
    from types import FrameType

    from rich.console import Console

    from capdex.captioners.ocr import OcrResult
    from capdex.indexer.pipeline import IndexSummary
    from capdex.search.engine import SearchHit
    from capdex.search.request import SearchRequest
    from capdex.settings import Settings
    from capdex.store.db import Database

app = typer.Typer(
    name="capdex",
    help="Caption every photo in a folder tree and search the captions in plain language.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    cls=PlainGroup,
    rich_markup_mode=None,
)


@app.callback()
def _main(verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log more.")] = False) -> None:
    logging.basicConfig(format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger().setLevel(logging.INFO if verbose else logging.WARNING)


@app.command()
def index(
    paths: Annotated[list[Path], typer.Argument(metavar="PATH...",
                                                help="Folders (or single photos) to index.")],
    data_dir: DataDir = None,
    captioner: CaptionerOpt = None,
    model_path: ModelPathOpt = None,
    endpoint: EndpointOpt = None,
    model: ModelOpt = None,
    recaption: Annotated[bool, typer.Option("--recaption", help="Caption again what another "
                         "model (or version) captioned; human captions stay.")] = False,
    reembed: Annotated[bool, typer.Option("--reembed", help="Embed every caption again "
                       "(a new CAPDEX_EMBEDDER is picked up without this).")] = False,
    write_xmp: Annotated[bool, typer.Option("--write-xmp", help="Write machine captions into "
                         "XMP sidecars (IMG.jpg.xmp), never over a person's.")] = False,
    retry_failed: Annotated[bool, typer.Option("--retry-failed", help="Retry files that failed "
                            "before, even if unchanged.")] = False,
    watch: Annotated[bool, typer.Option("--watch", help="Then keep indexing what is added, "
                     "changed, moved or deleted (Ctrl-C stops).")] = False,
    poll: Annotated[bool, typer.Option("--poll", help="With --watch: poll instead of OS events "
                    "(network shares).")] = False,
    batch_size: Annotated[int | None, typer.Option(min=1, max=1024, metavar="N", help="Images "
                          "per captioning batch (default: the captioner's).")] = None,
    ocr: Annotated[bool | None, typer.Option("--ocr/--no-ocr", help="Read the text photos show, "
                   "to search it too (default: on, or CAPDEX_OCR).")] = None,
    faces: Annotated[bool | None, typer.Option("--faces/--no-faces", help="Find faces and group "
                     "them into people (needs capdex[faces]; default: off, or CAPDEX_FACES).")] = None,
    place: Annotated[bool | None, typer.Option("--place/--no-place", help="Name where photos "
                     "with GPS were taken, and when, to search it too (default: on, or "
                     "CAPDEX_PLACE).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Caption and embed new or changed photos; forget deleted ones. Safe to re-run any time.

    Ctrl-C finishes the batch in hand and stops; the next run carries on from there.
    """
    from capdex.captioners import CaptionerError
    from capdex.disk_full import DiskFull
    from capdex.indexer.pipeline import Indexer, IndexerError

    settings = _settings(data_dir=data_dir, captioner=captioner, model_path=model_path,
                         captioner_endpoint=endpoint, captioner_model=model,
                         batch_size=batch_size, ocr=ocr, faces=faces, place=place)
    _check_captioner(settings)
    db = _database(settings)
    live = not as_json and sys.stderr.isatty()

    def report(summary: IndexSummary) -> None:
        if as_json:
            _print_json(summary.as_dict())
        elif not watch or summary.did_something:
            typer.echo(summary.line())
            if summary.failures or (summary.failed and not watch):
                typer.echo(f"{summary.failed} file(s) could not be indexed; see `capdex errors`.")

    with _progress(enabled=live and not watch) as progress:
        indexer = Indexer(settings, db, recaption=recaption, reembed=reembed, write_xmp=write_xmp,
                          retry_failed=retry_failed, progress=progress)
        with _stop_on_signals(indexer.stop, settings.stop_grace_seconds):
            try:
                if watch:
                    if not as_json:
                        typer.echo(f"watching {', '.join(map(str, paths))}; Ctrl-C stops", err=True)
                    indexer.watch(paths, poll=poll, on_batch=report)
                else:
                    summary = indexer.run(paths)
            except (IndexerError, CaptionerError) as exc:
                _fail(str(exc))
            except DiskFull as exc:
                _fail(str(exc), code=1)
    if watch:
        typer.echo("stopped", err=True)
        return
    report(summary)
    if summary.interrupted:
        typer.echo("interrupted; run the same command again to finish", err=True)
        raise typer.Exit(130)


class _stop_on_signals:
    """Ctrl-C (or SIGTERM, e.g. `docker stop`) sets `stop`: the batch in hand is committed and
    the run ends cleanly. A second signal, or a run still going `grace` seconds after the first
    (a file system that stopped answering), exits at once: as safe as kill -9 (see
    docs/indexing.md), and the data dir's lock goes with the process."""

    def __init__(self, stop: threading.Event, grace: float = 10.0) -> None:
        self.stop = stop
        self.grace = grace
        self._previous: dict[int, Any] = {}
        self._timer: Any = None

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        import threading

        if self.stop.is_set():
            _exit_now(130, "aborted")
        self.stop.set()
        typer.echo("stopping after the current batch (Ctrl-C again to abort)", err=True)
        if not self.grace:  # 0: wait for the batch in hand however long it takes
            return
        message = (f"still running {self.grace:g} s after the stop request; aborted (run the "
                   "same command again to finish)")
        timer = threading.Timer(self.grace, _exit_now, (130, message))
        timer.daemon = True
        timer.start()
        self._timer = timer

    def __enter__(self) -> _stop_on_signals:
        import signal
        import threading

        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        import signal

        if self._timer is not None:  # the run ended in time
            self._timer.cancel()
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)


def _exit_now(code: int, message: str) -> None:
    """End the process at once, whatever its threads are doing (a read that never returns
    would keep a normal exit waiting for its thread forever)."""
    import os

    try:
        typer.echo(message, err=True)
        sys.stderr.flush()
    finally:
        os._exit(code)


_STAGES = {"scan": "looking for photos", "hash": "checking files", "caption": "captioning",
           "ocr": "reading text", "faces": "finding faces", "embed": "indexing captions"}


class _progress:
    """One transient progress line on a terminal (the stage in hand), nothing otherwise; yields
    the indexer's callback.

    One line, not a bar per stage: the stages take turns, and a stack of bars left finished
    stages (and the last "embed 0/1" frame) on screen around the summary.
    """

    def __init__(self, enabled: bool, console: Console | None = None) -> None:
        self.enabled = enabled
        self.console = console
        self._bar: Any = None  # a rich Progress, imported when shown
        self._task: Any = None

    def __enter__(self) -> Callable[[str, int, int], None] | None:
        if not self.enabled:
            return None
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

        self._bar = Progress("[bold]{task.description}", BarColumn(), MofNCompleteColumn(),
                             TimeRemainingColumn(), transient=True, console=self.console)
        self._bar.start()
        self._task = self._bar.add_task("starting", total=None)
        return self._update

    def _update(self, stage: str, done: int, total: int) -> None:
        assert self._bar is not None
        label = _STAGES.get(stage, stage)
        task = self._bar.tasks[0]
        if task.description != label:  # a new stage: its own count and time estimate
            self._bar.reset(self._task, description=label, total=total, completed=done)
        else:
            self._bar.update(self._task, completed=done, total=total)

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()


@app.command()
def search(
    query: Annotated[str, typer.Argument(metavar="QUERY",
                                         help='What to look for, e.g. "dog on the beach".')],
    k: Annotated[int, typer.Option("-k", "--limit", min=1, max=1000, metavar="N",
                                   help="How many results.")] = 10,
    offset: Annotated[int, typer.Option(min=0, metavar="N", show_default=False,
                                        help="Skip the first N results (paging).")] = 0,
    mode: Annotated[str | None, typer.Option(metavar="MODE", help="hybrid (words and meaning, "
                    "the default), semantic or keyword.")] = None,
    min_score: Annotated[float | None, typer.Option(min=-1.0, max=1.0, metavar="SCORE",
                         help="Hide results scoring below SCORE (default: 0.3).")] = None,
    sort: Annotated[str, typer.Option(metavar="ORDER", show_default=False,
                                      help="relevance (default) or date (newest first).")] = "relevance",
    taken_after: Annotated[str | None, typer.Option(metavar="DATE", help="Only photos taken on "
                           "or after DATE (YYYY-MM-DD).")] = None,
    taken_before: Annotated[str | None, typer.Option(metavar="DATE", help="Only photos taken "
                            "on or before DATE.")] = None,
    folder: Annotated[Path | None, typer.Option(metavar="DIR",
                                                help="Only photos under DIR.")] = None,
    camera: Annotated[str | None, typer.Option(metavar="TEXT", help="Only photos whose camera "
                      "make or model contains TEXT.")] = None,
    has_text: Annotated[bool | None, typer.Option("--has-text/--no-text", help="Only photos "
                        "that show text (OCR), or only those that do not.")] = None,
    person: Annotated[str | None, typer.Option(metavar="PERSON", help="Only photos of PERSON "
                      "(an id or a name; see `capdex people list`).")] = None,
    place: Annotated[str | None, typer.Option(metavar="PLACE", help="Only photos taken in this "
                     "city, region or country.")] = None,
    parse: Annotated[bool, typer.Option("--parse/--no-parse", help="Read places and dates out "
                     "of QUERY as filters (\"cat in Tokyo 2019\").")] = True,
    data_dir: DataDir = None,
    as_json: JsonOpt = False,
) -> None:
    """Search indexed photos by words and meaning."""
    from capdex.search.engine import SearchEngine, SearchUnavailable
    from capdex.search.request import MAX_FOLDER_LENGTH, SearchRequest, SearchRequestError

    try:
        if folder is not None and len(str(folder)) > MAX_FOLDER_LENGTH:
            raise SearchRequestError(f"folder: longer than {MAX_FOLDER_LENGTH} characters")
        request = SearchRequest.build(
            query, k=k, offset=offset, mode=mode, min_score=min_score, sort=sort,
            taken_after=taken_after, taken_before=taken_before, camera=camera, has_text=has_text,
            person=person,
            folder=str(folder.expanduser().resolve()) if folder else None, place=place,
            parse=parse)
    except SearchRequestError as exc:
        _fail(str(exc))
    except OSError as exc:  # e.g. a folder name too long for the file system
        _fail(f"folder: {exc.strerror or exc}")
    settings = _settings(data_dir=data_dir)
    db = _indexed_database(settings)
    engine = SearchEngine(settings, db)
    try:
        results = engine.search(request)
    except SearchUnavailable as exc:
        _fail(str(exc))
    if as_json:
        _print_json(results.as_dict())
        return
    for note in results.notes:
        typer.echo(f"note: {note}", err=True)
    if results.understood and any(v for k, v in results.understood.items() if k != "text"):
        typer.echo(f"understood: {_understood_line(results.understood)}", err=True)
    if not results.results or all(hit.weak for hit in results.results):
        typer.echo(_nothing_found(settings, db, request))
        if results.results:
            typer.echo("No strong matches — closest photos:")
            _print_hits(results.results)
        return
    _print_hits(results.results)
    shown = request.offset + len(results.results)
    typer.echo(f"{request.offset + 1}-{shown} of {results.total} ({results.mode})")


def _understood_line(understood: dict[str, Any]) -> str:
    """"place Tokyo, taken 2019-01-01 to 2019-12-31, season summer; searched "cat""."""
    parts = []
    if understood.get("place"):
        parts.append(f"place {understood['place']}")
    after, before = understood.get("taken_after"), understood.get("taken_before")
    if after or before:
        parts.append(f"taken {after or '…'} to {before or '…'}")
    if understood.get("season"):
        parts.append(f"season {understood['season']}")
    text = understood.get("text")
    return ", ".join(parts) + (f'; searched "{text}"' if text else "; filters only")


def _nothing_found(settings: Settings, db: Database, request: SearchRequest) -> str:
    """Why a search came back empty: how many photos it looked at, and what to try."""
    from capdex.store import repo

    from capdex.embedder import canonical_name

    photos = repo.counts(db, canonical_name(settings.embedder)).photos
    cut = settings.min_score if request.min_score is None else request.min_score
    line = (f'No photos match "{request.q}" among the {photos} photo{"s" * (photos != 1)} '
            f"indexed in {settings.data_dir}")
    if request.offset:
        return line + f" past the first {request.offset}."
    return line + f" (cut-off {cut:g}; `--min-score 0` shows weaker matches)."


def _print_hits(hits: Sequence[SearchHit]) -> None:
    for hit in hits:
        why = []
        match: dict[str, Any] = hit.match or {}
        if match.get("keyword"):
            why.append(f"words: {match['keyword']['snippet'] or ', '.join(match['keyword']['terms'])}")
        if match.get("semantic"):
            why.append(f"meaning: {match['semantic']['score']:.2f}")
        if match.get("looks"):
            same = ", the same picture" if match["looks"]["near_duplicate"] else ""
            why.append(f"looks: {match['looks']['score']:.2f}{same}")
        if match.get("caption"):
            why.append(f"caption: {match['caption']['score']:.2f}")
        taken = f"  {hit.taken_at:%Y-%m-%d}" if hit.taken_at else ""
        typer.echo(f"{hit.score:6.3f}  {hit.path}{taken}\n        {hit.caption}")
        if why:
            typer.echo(f"        ({'; '.join(why)})")
        if getattr(hit, "ocr_snippet", None):
            typer.echo(f"        text: {hit.ocr_snippet}")


@app.command()
def similar(
    photo_id: Annotated[int, typer.Argument(metavar="ID", min=1, max=MAX_ID,
                                            help="The photo's id (see `search --json`).")],
    k: Annotated[int, typer.Option("-k", "--limit", min=1, max=1000, metavar="N",
                                   help="How many photos.")] = 10,
    data_dir: DataDir = None,
    as_json: JsonOpt = False,
) -> None:
    """Photos that look like this one (near-duplicates first), else whose captions mean the
    same."""
    from capdex.search.engine import SearchEngine, SimilarNotFound

    settings = _settings(data_dir=data_dir)
    engine = SearchEngine(settings, _indexed_database(settings))
    try:
        results = engine.similar(photo_id, k=k)
    except SimilarNotFound as exc:
        _fail(str(exc))
    if as_json:
        _print_json(results.as_dict())
        return
    how = ("by how they look, then by caption" if results.by == "looks"
           else "by caption (this photo has no image features)")
    typer.echo(f"Like photo {photo_id} ({how}): {results.caption}")
    if not results.results:
        typer.echo("No other photos.")
    _print_hits(results.results)


@app.command(name="eval")
def evaluate(
    queries: Annotated[Path, typer.Argument(metavar="FILE", help='JSON list of {"q": query, '
                                            '"rel": [file names]}.')],
    min_score: Annotated[float | None, typer.Option(min=-1.0, max=1.0, metavar="SCORE",
                         help="Cut-off to use (default: the settings').")] = None,
    parse: Annotated[bool, typer.Option("--parse/--no-parse", help="Read places and dates out "
                     "of the queries as filters (--no-parse: as before issue 15).")] = True,
    data_dir: DataDir = None,
    as_json: JsonOpt = False,
) -> None:
    """Measure search quality per mode: recall@1/5/10, MRR and nDCG@10 over known answers."""
    from capdex.search.engine import SearchEngine
    from capdex.search.evaluate import EvalFileError, format_table, load_queries
    from capdex.search.evaluate import evaluate as run

    try:
        items = load_queries(queries)
    except EvalFileError as exc:
        _fail(str(exc))
    settings = _settings(data_dir=data_dir)
    engine = SearchEngine(settings, _indexed_database(settings))
    modes = ("hybrid", "semantic", "keyword") if engine.keyword.available else ("semantic",)
    reports = run(engine, items, modes, min_score, parse)
    if as_json:
        _print_json({"queries": str(queries), "modes": {r.mode: r.as_dict() for r in reports}})
    else:
        typer.echo(format_table(reports))


@app.command()
def status(data_dir: DataDir = None, as_json: JsonOpt = False) -> None:
    """How many photos, files, vectors and errors the index holds."""
    from capdex.api.status import status as get_status

    settings = _settings(data_dir=data_dir)
    try:
        data = get_status(settings, _open_indexed(settings, photos=False))
    except _NoIndex as exc:
        if as_json:  # scripts get the numbers: nothing here yet
            _print_json({"photos": 0, "files": 0, "vectors": 0, "captions": 0, "errors": 0,
                         "data_dir": str(settings.data_dir), "note": str(exc)})
        else:
            typer.echo(f"capdex: {exc}", err=True)
        raise typer.Exit(1) from None
    if as_json:
        _print_json(data)
        return
    for key, value in data.items():
        if isinstance(value, dict):
            value = ", ".join(f"{name} {n}" for name, n in value.items()) or "-"
        elif key == "captioner":
            value = f"{value} (the default for photos indexed next)"
        typer.echo(f"{key.replace('_', ' '):>12}: {value}")


@app.command()
def errors(data_dir: DataDir = None, as_json: JsonOpt = False) -> None:
    """Files that could not be indexed, and why (retried when the file changes)."""
    from capdex.store.errors import all_errors

    settings = _settings(data_dir=data_dir)
    with _indexed_database(settings, photos=False).read() as session:
        rows = all_errors(session)
    if as_json:
        _print_json({"errors": [{"path": r.path, "reason": r.reason, "when": r.created_at,
                                 "size": r.size} for r in rows]})
        return
    if not rows:
        typer.echo("No errors.")
    for row in rows:
        typer.echo(f"{row.path}\n    {row.reason}")


@app.command()
def caption(
    image: Annotated[Path, typer.Argument(exists=True, dir_okay=False, metavar="PHOTO",
                                          help="A photo file.")],
    captioner: CaptionerOpt = None,
    model_path: ModelPathOpt = None,
    endpoint: EndpointOpt = None,
    model: ModelOpt = None,
    ocr: Annotated[bool | None, typer.Option("--ocr/--no-ocr", help="Also read the text the "
                   "photo shows, as indexing does (default: on, or CAPDEX_OCR).")] = None,
    data_dir: DataDir = None,
    as_json: JsonOpt = False,
) -> None:
    """Caption one photo and print the caption, and the text it shows (nothing is stored).

    The caption is the first line; the text OCR read follows, labelled, as `capdex index`
    would store it.
    """
    from capdex.images import ImageLoadError, load_image
    from capdex.captioners import CaptionerError, registry

    settings = _settings(data_dir=data_dir, captioner=captioner, model_path=model_path,
                         captioner_endpoint=endpoint, captioner_model=model, ocr=ocr)
    _check_captioner(settings)
    model_obj = registry.create(settings.captioner, settings)
    try:
        picture = load_image(image, max_pixels=settings.max_image_pixels,
                             size_hint=model_obj.input_size)
        text = model_obj.caption(picture)
        read = _read_text(image, settings) if settings.ocr else None
    except ImageLoadError as exc:
        _fail(f"{image}: {exc}")
    except CaptionerError as exc:
        _fail(str(exc))
    if as_json:
        _print_json({"caption": text, "captioner": settings.captioner,
                     "text": read.text if read else None,
                     "text_confidence": read.confidence if read else None})
        return
    typer.echo(text)
    if read is None:
        return
    if not read.text:
        typer.echo("Text in the photo (OCR): none found")
        return
    confidence = f", {read.confidence:.0%} confident" if read.confidence is not None else ""
    typer.echo(f"Text in the photo (OCR{confidence}):")
    for line in read.text.splitlines():
        typer.echo(f"  {line}")


def _read_text(image: Path, settings: Settings) -> OcrResult:
    """The text `image` shows, read as the indexer's OCR stage reads it (same size, engine and
    confidence cut); a missing OCR engine is a clear error naming what to install."""
    from capdex.captioners.ocr import OcrUnavailable, shared_engine
    from capdex.images import decode_image

    side = settings.ocr_max_side
    picture = decode_image(image, max_pixels=settings.max_image_pixels,
                           size_hint=(1, side)).image
    if max(picture.size) > side:
        picture = picture.copy()
        picture.thumbnail((side, side))
    try:
        return shared_engine(settings.ocr_min_confidence).read(picture)
    except OcrUnavailable as exc:
        _fail(f"{exc} (or pass --no-ocr)")


@app.command("caption-set")
def caption_set(
    photo_id: Annotated[int, typer.Argument(metavar="ID", min=1, max=MAX_ID, help="The photo's "
                                            "id (from search results or the API).")],
    text: Annotated[str | None, typer.Argument(metavar="TEXT", help="The caption: it outranks "
                    "machine captions, and re-captioning never replaces it.")] = None,
    clear: Annotated[bool, typer.Option("--clear", help="Remove the human caption; the machine "
                     "caption speaks again.")] = False,
    data_dir: DataDir = None,
    as_json: JsonOpt = False,
) -> None:
    """Set (or --clear) a photo's human caption; it is searchable at once."""
    from capdex.embedder import get_embedder
    from capdex.indexer.human import CaptionRejected, PhotoNotFound, clear_human_caption, set_human_caption
    from capdex.store.index_writer import IndexWriter

    if clear == (text is not None):
        _fail("give either a caption or --clear")
    settings = _settings(data_dir=data_dir)
    db = _indexed_database(settings)
    embedder = get_embedder(settings)
    try:
        if clear:
            change = clear_human_caption(db, embedder, photo_id, ocr_words=settings.ocr_embed_words)
        else:
            change = set_human_caption(db, embedder, photo_id, text or "",
                                       ocr_words=settings.ocr_embed_words)
    except (CaptionRejected, PhotoNotFound) as exc:
        _fail(str(exc))
    # Opening the index brings the file in line with the database (under the save lock).
    IndexWriter.for_data_dir(settings, db, embedder.name, lambda: embedder.dim).apply_and_save(change)
    from capdex.api.photos import photo_dict

    data = photo_dict(db, photo_id)
    if as_json:
        _print_json(data)
    else:
        typer.echo(f"{photo_id}: {data['caption']} ({data['caption_source']})")


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(metavar="ADDRESS", help="Address to listen on "
                    "(default: 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(min=1, max=65535, metavar="PORT",
                                             help="Port (default: 8000).")] = None,
    photo_root: Annotated[list[Path] | None, typer.Option("--photo-root", metavar="DIR",
                          help="A folder the web page may index (repeatable).")] = None,
    insecure: Annotated[bool, typer.Option("--insecure", help="Listen beyond this machine "
                        "without an API key (CAPDEX_API_KEY).")] = False,
    data_dir: DataDir = None,
) -> None:
    """Serve the web page at / and the JSON API (docs at /docs)."""
    from capdex.api.security import is_loopback

    settings = _settings(data_dir=data_dir, host=host, port=port)
    if photo_root:
        roots = list(settings.photo_roots) + [Path(p) for p in photo_root]
        settings = _settings(data_dir=data_dir, host=host, port=port, photo_roots=roots)
    if not is_loopback(settings.host) and settings.api_key is None and not insecure:
        _fail(f"refusing to listen on {settings.host} without an API key: anyone on the network "
              "could read your photos. Set CAPDEX_API_KEY (clients send it as X-API-Key), or "
              "pass --insecure if something else guards this address.")
    _database(settings)  # fail early and clearly if the store cannot be opened
    _run_server(settings)


def _run_server(settings: Settings) -> None:
    import uvicorn

    from capdex.api.app import create_app

    # h11 stops reading a request head that stays incomplete past 64 KiB; the app itself
    # refuses heads over 32 KiB (431) and bodies over CAPDEX_MAX_REQUEST_BYTES (413).
    # One log line per request (every thumbnail of a page) only with --verbose.
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level="info",
                access_log=logging.getLogger().isEnabledFor(logging.INFO),
                h11_max_incomplete_event_size=64 * 1024)


from capdex.api.cli_models import models_app  # noqa: E402 - mounted after the app exists

app.add_typer(models_app, name="models")

from capdex.api.cli_spark import register as _register_spark  # noqa: E402

_register_spark(app)

from capdex.api.cli_ask import register as _register_ask  # noqa: E402

_register_ask(app)

from capdex.api.cli_people import register as _register_people  # noqa: E402

_register_people(app)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
