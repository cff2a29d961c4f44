"""The `capdex` command: index folders, search them, serve the API, inspect the store."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from capdex.api.cli_common import (
    CaptionerOpt,
    DataDir,
    EndpointOpt,
    JsonOpt,
    ModelOpt,
    ModelPathOpt,
    _check_captioner,
    _database,
    _fail,
    _print_json,
    _settings,
)

app = typer.Typer(
    name="capdex",
    help="Caption every photo in a folder tree and search the captions in plain language.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def _main(verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log more.")] = False) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )


@app.command()
def index(
    paths: Annotated[list[Path], typer.Argument(help="Folders (or single photos) to index.")],
    data_dir: DataDir = None,
    captioner: CaptionerOpt = None,
    model_path: ModelPathOpt = None,
    endpoint: EndpointOpt = None,
    model: ModelOpt = None,
    recaption: Annotated[bool, typer.Option(help="Re-caption machine captions made by another "
                         "captioner or version (human captions are never touched).")] = False,
    reembed: Annotated[bool, typer.Option(help="Re-embed every caption with the current embedder "
                       "(a different CAPDEX_EMBEDDER is picked up without this).")] = False,
    write_xmp: Annotated[bool, typer.Option("--write-xmp", help="Write machine captions into XMP "
                         "sidecars (IMG.jpg.xmp); never over a person's caption, never into "
                         "the photo.")] = False,
    retry_failed: Annotated[bool, typer.Option(help="Retry files that failed before even if "
                            "they have not changed (e.g. after raising a limit).")] = False,
    watch: Annotated[bool, typer.Option("--watch", help="After indexing, keep watching and index "
                     "new, changed, moved and deleted photos as they happen (Ctrl-C stops).")] = False,
    poll: Annotated[bool, typer.Option("--poll", help="With --watch: poll instead of OS events "
                    "(network shares, where other machines' changes raise no events).")] = False,
    batch_size: Annotated[int | None, typer.Option(min=1, max=1024, help="Images per captioning "
                          "batch (default: the captioner's).")] = None,
    ocr: Annotated[bool | None, typer.Option("--ocr/--no-ocr", help="Read the text photos show "
                   "(OCR), searchable with the caption; on unless CAPDEX_OCR=false. A new OCR "
                   "engine version redoes OCR only.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Caption and embed new or changed photos; forget deleted ones. Safe to re-run any time.

    Ctrl-C finishes the batch in hand and stops; the next run carries on from there.
    """
    from capdex.captioners import CaptionerError
    from capdex.indexer.pipeline import Indexer, IndexerError

    settings = _settings(data_dir=data_dir, captioner=captioner, model_path=model_path,
                         captioner_endpoint=endpoint, captioner_model=model,
                         batch_size=batch_size, ocr=ocr)
    _check_captioner(settings)
    db = _database(settings)
    live = not as_json and sys.stderr.isatty()

    def report(summary) -> None:  # type: ignore[no-untyped-def]
        if as_json:
            _print_json(summary.as_dict())
        elif not watch or summary.did_something:
            typer.echo(summary.line())
            if summary.failures or (summary.failed and not watch):
                typer.echo(f"{summary.failed} file(s) could not be indexed; see `capdex errors`.")

    with _progress(enabled=live and not watch) as progress:
        indexer = Indexer(settings, db, recaption=recaption, reembed=reembed, write_xmp=write_xmp,
                          retry_failed=retry_failed, progress=progress)
        with _stop_on_signals(indexer.stop):
            try:
                if watch:
                    if not as_json:
                        typer.echo(f"watching {', '.join(map(str, paths))}; Ctrl-C stops", err=True)
                    indexer.watch(paths, poll=poll, on_batch=report)
                else:
                    summary = indexer.run(paths)
            except (IndexerError, CaptionerError) as exc:
                _fail(str(exc))
    if watch:
        typer.echo("stopped", err=True)
        return
    report(summary)
    if summary.interrupted:
        typer.echo("interrupted; run the same command again to finish", err=True)
        raise typer.Exit(130)


class _stop_on_signals:
    """Ctrl-C (or SIGTERM, e.g. `docker stop`) sets `stop`: the batch in hand is committed and
    the run ends cleanly. A second Ctrl-C aborts at once (still safe: see indexer.pipeline)."""

    def __init__(self, stop) -> None:  # type: ignore[no-untyped-def]
        self.stop = stop
        self._previous: dict[int, Any] = {}

    def _handle(self, signum, frame) -> None:  # type: ignore[no-untyped-def]
        import signal

        if self.stop.is_set() and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.stop.set()
        typer.echo("stopping after the current batch (Ctrl-C again to abort)", err=True)

    def __enter__(self) -> _stop_on_signals:
        import signal
        import threading

        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        import signal

        for signum, handler in self._previous.items():
            signal.signal(signum, handler)


class _progress:
    """A rich progress bar on a terminal, nothing otherwise; yields the indexer's callback."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self._bar = None
        self._tasks: dict[str, Any] = {}

    def __enter__(self):  # type: ignore[no-untyped-def]
        if not self.enabled:
            return None
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

        self._bar = Progress("[bold]{task.description}", BarColumn(), MofNCompleteColumn(),
                             TimeRemainingColumn(), transient=True)
        self._bar.start()
        return self._update

    def _update(self, stage: str, done: int, total: int) -> None:
        assert self._bar is not None
        if stage not in self._tasks:
            self._tasks[stage] = self._bar.add_task(stage, total=total)
        self._bar.update(self._tasks[stage], completed=done, total=total)

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()


@app.command()
def search(
    query: Annotated[str, typer.Argument(help='What to look for, e.g. "dog on the beach".')],
    k: Annotated[int, typer.Option("-k", "--k", min=1, max=1000, help="How many results.")] = 10,
    offset: Annotated[int, typer.Option(min=0, help="Skip this many results (paging).")] = 0,
    mode: Annotated[str | None, typer.Option(help="hybrid (default), semantic (by meaning) or "
                    "keyword (by words).")] = None,
    min_score: Annotated[float | None, typer.Option(min=-1.0, max=1.0, help="Drop results "
                         "scoring below this (default from the settings).")] = None,
    sort: Annotated[str, typer.Option(help="relevance, or date (newest first).")] = "relevance",
    taken_after: Annotated[str | None, typer.Option(help="Only photos taken on or after this "
                           "ISO date (EXIF date taken).")] = None,
    taken_before: Annotated[str | None, typer.Option(help="Only photos taken on or before this "
                            "ISO date.")] = None,
    folder: Annotated[Path | None, typer.Option(help="Only photos under this folder.")] = None,
    camera: Annotated[str | None, typer.Option(help="Only photos whose camera make or model "
                      "contains this.")] = None,
    has_text: Annotated[bool | None, typer.Option("--has-text/--no-text", help="Only photos "
                        "that show text (OCR), or only those that do not.")] = None,
    data_dir: DataDir = None,
    as_json: JsonOpt = False,
) -> None:
    """Search indexed photos by words and meaning."""
    from capdex.search.engine import SearchEngine, SearchUnavailable
    from capdex.search.request import SearchRequest, SearchRequestError

    try:
        request = SearchRequest.build(
            query, k=k, offset=offset, mode=mode, min_score=min_score, sort=sort,
            taken_after=taken_after, taken_before=taken_before, camera=camera, has_text=has_text,
            folder=str(folder.expanduser().resolve()) if folder else None)
    except SearchRequestError as exc:
        _fail(str(exc))
    settings = _settings(data_dir=data_dir)
    engine = SearchEngine(settings, _database(settings))
    try:
        results = engine.search(request)
    except SearchUnavailable as exc:
        _fail(str(exc))
    if as_json:
        _print_json(results.as_dict())
        return
    for note in results.notes:
        typer.echo(f"note: {note}", err=True)
    if not results.results:
        typer.echo("No matching photos.")
        return
    _print_hits(results.results)
    shown = request.offset + len(results.results)
    typer.echo(f"{request.offset + 1}-{shown} of {results.total} ({results.mode})")


def _print_hits(hits) -> None:  # type: ignore[no-untyped-def]
    for hit in hits:
        why = []
        match = hit.match or {}
        if match.get("keyword"):
            why.append(f"words: {match['keyword']['snippet'] or ', '.join(match['keyword']['terms'])}")
        if match.get("semantic"):
            why.append(f"meaning: {match['semantic']['score']:.2f}")
        taken = f"  {hit.taken_at:%Y-%m-%d}" if hit.taken_at else ""
        typer.echo(f"{hit.score:6.3f}  {hit.path}{taken}\n        {hit.caption}")
        if why:
            typer.echo(f"        ({'; '.join(why)})")
        if getattr(hit, "ocr_snippet", None):
            typer.echo(f"        text: {hit.ocr_snippet}")


@app.command()
def similar(
    photo_id: Annotated[int, typer.Argument(help="The photo's id (see `search --json`).")],
    k: Annotated[int, typer.Option("-k", "--k", min=1, max=1000, help="How many photos.")] = 10,
    data_dir: DataDir = None,
    as_json: JsonOpt = False,
) -> None:
    """Photos whose captions mean what this photo's caption means."""
    from capdex.search.engine import SearchEngine, SimilarNotFound

    settings = _settings(data_dir=data_dir)
    engine = SearchEngine(settings, _database(settings))
    try:
        results = engine.similar(photo_id, k=k)
    except SimilarNotFound as exc:
        _fail(str(exc))
    if as_json:
        _print_json(results.as_dict())
        return
    typer.echo(f"Like photo {photo_id}: {results.caption}")
    if not results.results:
        typer.echo("No other photos.")
    _print_hits(results.results)


@app.command(name="eval")
def evaluate(
    queries: Annotated[Path, typer.Argument(help='JSON list of {"q": query, "rel": [file names]}.')],
    min_score: Annotated[float | None, typer.Option(min=-1.0, max=1.0, help="Cut-off to use "
                         "(default from the settings).")] = None,
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
    engine = SearchEngine(settings, _database(settings))
    modes = ("hybrid", "semantic", "keyword") if engine.keyword.available else ("semantic",)
    reports = run(engine, items, modes, min_score)
    if as_json:
        _print_json({"queries": str(queries), "modes": {r.mode: r.as_dict() for r in reports}})
    else:
        typer.echo(format_table(reports))


@app.command()
def status(data_dir: DataDir = None, as_json: JsonOpt = False) -> None:
    """How many photos, files, vectors and errors the index holds."""
    from capdex.api.status import status as get_status

    settings = _settings(data_dir=data_dir)
    data = get_status(settings, _database(settings))
    if as_json:
        _print_json(data)
    else:
        for key, value in data.items():
            typer.echo(f"{key:>10}: {value}")


@app.command()
def errors(data_dir: DataDir = None, as_json: JsonOpt = False) -> None:
    """Files that could not be indexed, and why (retried when the file changes)."""
    from capdex.store.errors import all_errors

    settings = _settings(data_dir=data_dir)
    with _database(settings).read() as session:
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
    image: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="A photo file.")],
    captioner: CaptionerOpt = None,
    model_path: ModelPathOpt = None,
    endpoint: EndpointOpt = None,
    model: ModelOpt = None,
    data_dir: DataDir = None,
) -> None:
    """Caption one photo and print the caption (nothing is stored)."""
    from capdex.images import ImageLoadError, load_image
    from capdex.captioners import CaptionerError, registry

    settings = _settings(data_dir=data_dir, captioner=captioner, model_path=model_path,
                         captioner_endpoint=endpoint, captioner_model=model)
    _check_captioner(settings)
    model_obj = registry.create(settings.captioner, settings)
    try:
        picture = load_image(image, max_pixels=settings.max_image_pixels,
                             size_hint=model_obj.input_size)
        typer.echo(model_obj.caption(picture))
    except ImageLoadError as exc:
        _fail(f"{image}: {exc}")
    except CaptionerError as exc:
        _fail(str(exc))


@app.command("caption-set")
def caption_set(
    photo_id: Annotated[int, typer.Argument(help="The photo's id (from search results or the API).")],
    text: Annotated[str | None, typer.Argument(help="The caption. It outranks machine captions "
                    "and no re-captioning ever replaces it.")] = None,
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
    db = _database(settings)
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
    host: Annotated[str | None, typer.Option(help="Address to listen on.")] = None,
    port: Annotated[int | None, typer.Option(min=1, max=65535, help="Port.")] = None,
    photo_root: Annotated[list[Path] | None, typer.Option("--photo-root", help="A folder the "
                          "web page may index (repeatable; adds to CAPDEX_PHOTO_ROOTS).")] = None,
    insecure: Annotated[bool, typer.Option("--insecure", help="Allow listening on a "
                        "non-loopback address without an API key (CAPDEX_API_KEY).")] = False,
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


def _run_server(settings) -> None:  # type: ignore[no-untyped-def]
    import uvicorn

    from capdex.api.app import create_app

    # h11 stops reading a request head that stays incomplete past 64 KiB; the app itself
    # refuses heads over 32 KiB (431) and bodies over CAPDEX_MAX_REQUEST_BYTES (413).
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level="info",
                h11_max_incomplete_event_size=64 * 1024)


from capdex.api.cli_models import models_app  # noqa: E402 - mounted after the app exists

app.add_typer(models_app, name="models")

from capdex.api.cli_spark import register as _register_spark  # noqa: E402

_register_spark(app)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
