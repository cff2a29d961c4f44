"""The FastAPI app: JSON search and photo endpoints. Blocking work runs in the thread pool."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import FastAPI, HTTPException, Query, Request
from fastapi_offline import FastAPIOffline
from fastapi.responses import FileResponse, Response

from capdex.api import ask_routes, job_routes, people_routes, photo_routes, photos
from capdex.api.errors import install_error_handling
from capdex.api.jobs import JobRunner
from capdex.api.photo_files import file_response, open_indexed
from capdex.api.schemas import CaptionIn, Health, PhotoOut, SearchOut, SimilarOut, StatusOut
from capdex.api.security import install_security
from capdex.api.status import status as get_status
from capdex.api.webpage import mount_web
from capdex import __version__
from capdex.embedder import Embedder
from capdex.settings import Settings
from capdex.indexer.human import (
    CaptionChange,
    CaptionRejected,
    PhotoNotFound,
    clear_human_caption,
    set_human_caption,
)
from capdex.indexer.thumbnails import has_thumbnail, thumbnail_path, write_thumbnail
from capdex.search.engine import SearchEngine, SearchUnavailable, SimilarNotFound
from capdex.search.request import (
    MAX_CAMERA_LENGTH,
    MAX_PERSON_LENGTH,
    MAX_DATE_LENGTH,
    MAX_FOLDER_LENGTH,
    MAX_QUERY_LENGTH,
    SearchRequest,
    SearchRequestError,
)
from capdex.store.db import Database
from capdex.store.models import Photo


def _warm_up(engine: SearchEngine) -> None:
    """Load the embedder and the vector index at start-up, so the first search is as fast as
    the rest; a failure here is only logged (the search itself then says what is wrong)."""
    try:
        engine.embedder.embed(["warm up"])
        _ = engine.index
    except Exception as exc:  # noqa: BLE001 - e.g. no embedder installed: searches will say so
        logging.getLogger(__name__).warning("could not warm up search: %s", exc)


def create_app(settings: Settings | None = None) -> FastAPI:
    """An app serving the data dir of `settings` (default: settings from the environment)."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        db = Database(settings.db_url)
        app.state.db = db
        app.state.engine = SearchEngine(settings, db)
        app.state.jobs = JobRunner(settings, db, app.state.engine.embedder)
        _warm_up(app.state.engine)
        yield
        app.state.jobs.shutdown()
        ask_routes.close(app)
        db.close()

    # /docs and /redoc with their scripts and styles served from the fastapi-offline package
    # under /docs-assets, not from a CDN: they work on a machine without internet.
    app = FastAPIOffline(title="capdex", version=__version__, lifespan=lifespan,
                         description="Search photos by what their captions say.",
                         static_url="/docs-assets")
    app.state.settings = settings
    install_security(app, settings)
    install_error_handling(app)
    app.include_router(photo_routes.router)
    app.include_router(job_routes.router)
    app.include_router(ask_routes.router)
    app.include_router(people_routes.router)
    mount_web(app)

    def engine(request: Request) -> SearchEngine:
        return request.app.state.engine

    def load_photo(request: Request, photo_id: int) -> Photo:
        return photo_routes.photo_or_404(request, photo_id)

    def edit_caption(request: Request, photo_id: int,
                     edit: Callable[[Database, Embedder, int], CaptionChange]) -> PhotoOut:
        """Apply a caption edit, then update the live index and its file before answering, so
        the very next search (here or in another process) finds the new text."""
        search = engine(request)
        try:
            change: CaptionChange = edit(request.app.state.db, search.embedder, photo_id)
        except PhotoNotFound as exc:
            raise HTTPException(404, str(exc)) from exc
        except CaptionRejected as exc:
            raise HTTPException(422, str(exc)) from exc
        change.apply_to(search.index, request.app.state.db)
        return photos.photo_out(load_photo(request, photo_id))

    @app.get("/healthz", response_model=Health, tags=["meta"])
    def healthz() -> Health:
        return Health()

    @app.get("/api/search", response_model=SearchOut, tags=["search"])
    def search(
        request: Request,
        q: Annotated[str, Query(min_length=1, max_length=MAX_QUERY_LENGTH,
                                description='What to look for, e.g. "dog on the beach".')],
        k: Annotated[int, Query(ge=1, le=1000, description="Results per page.")] = 20,
        offset: Annotated[int, Query(ge=0, le=100_000, description="Results to skip.")] = 0,
        mode: Annotated[str | None, Query(max_length=20, description="hybrid (default), "
                                          "semantic or keyword.")] = None,
        min_score: Annotated[float | None, Query(
            ge=-1.0, le=1.0, description="Relevance cut-off (default from the settings).")] = None,
        sort: Annotated[str, Query(max_length=20, description="relevance or date (newest "
                                   "first).")] = "relevance",
        taken_after: Annotated[str | None, Query(
            max_length=MAX_DATE_LENGTH, description="ISO date: taken on or after.")] = None,
        taken_before: Annotated[str | None, Query(
            max_length=MAX_DATE_LENGTH, description="ISO date: taken on or before.")] = None,
        folder: Annotated[str | None, Query(
            max_length=MAX_FOLDER_LENGTH, description="Only photos under this folder.")] = None,
        camera: Annotated[str | None, Query(
            max_length=MAX_CAMERA_LENGTH, description="Camera make or model contains this.")] = None,
        has_text: Annotated[bool | None, Query(description="Only photos that show text (OCR) "
                                               "(true), or only those that do not (false).")] = None,
        person: Annotated[str | None, Query(max_length=MAX_PERSON_LENGTH, description="Only photos of this "
                                            "person: an id or a name (see /api/people).")] = None,
        place: Annotated[str | None, Query(max_length=200, description="Only photos taken in this "
                                           "city, region or country.")] = None,
        parse: Annotated[bool, Query(description="Read places and dates out of q as filters "
                                     "(\"cat in Tokyo 2019\").")] = True,
    ) -> SearchOut:
        try:
            query = SearchRequest.build(
                q, k=k, offset=offset, mode=mode, min_score=min_score, sort=sort,
                taken_after=taken_after, taken_before=taken_before, folder=folder, camera=camera,
                has_text=has_text, person=person, place=place, parse=parse)
            results = engine(request).search(query)
        except SearchRequestError as exc:
            raise HTTPException(422, str(exc)) from exc
        except SearchUnavailable as exc:
            raise HTTPException(501, str(exc)) from exc
        return SearchOut.model_validate(results.as_dict())

    @app.get("/api/photos/{photo_id}/similar", response_model=SimilarOut, tags=["search"])
    def similar(
        request: Request, photo_id: int,
        k: Annotated[int, Query(ge=1, le=1000, description="How many photos.")] = 20,
    ) -> SimilarOut:
        try:
            results = engine(request).similar(photo_id, k=k)
        except SimilarNotFound as exc:
            raise HTTPException(404, str(exc)) from exc
        return SimilarOut.model_validate(results.as_dict())

    @app.get("/api/photos/{photo_id}", response_model=PhotoOut, tags=["photos"])
    def photo(request: Request, photo_id: int) -> PhotoOut:
        return photos.photo_out(load_photo(request, photo_id))

    @app.put("/api/photos/{photo_id}/caption", response_model=PhotoOut, tags=["photos"])
    def put_caption(request: Request, photo_id: int, body: CaptionIn) -> PhotoOut:
        """Store a person's caption: searchable at once, never overwritten by a machine."""
        return edit_caption(request, photo_id, lambda db, embedder, pid: set_human_caption(
            db, embedder, pid, body.caption, ocr_words=settings.ocr_embed_words))

    @app.delete("/api/photos/{photo_id}/caption", response_model=PhotoOut, tags=["photos"])
    def delete_caption(request: Request, photo_id: int) -> PhotoOut:
        """Remove a person's caption; the machine caption speaks for the photo again."""
        return edit_caption(request, photo_id, lambda db, embedder, pid: clear_human_caption(
            db, embedder, pid, ocr_words=settings.ocr_embed_words))

    @app.get("/api/photos/{photo_id}/thumbnail", response_class=FileResponse, tags=["photos"])
    def thumbnail(request: Request, photo_id: int) -> Response:
        item = load_photo(request, photo_id)
        content_hash = item.content_hash
        photo_routes.image_maker(request).make(
            f"thumbnail-{content_hash}", lambda: has_thumbnail(settings, content_hash),
            lambda: write_thumbnail(settings, content_hash, photo_routes.decode_indexed(
                request, item, settings.thumbnail_size)))
        path = thumbnail_path(settings, content_hash)
        etag = f"{item.content_hash[:32]}-t{settings.thumbnail_size}"
        return photo_routes.cached_image(request, path, etag, "image/webp")

    @app.get("/api/photos/{photo_id}/file", response_class=FileResponse, tags=["photos"])
    def original(request: Request, photo_id: int) -> Response:
        """The photo's file as indexed: a regular file under a photo root (when roots are
        configured) whose bytes are still those indexed; else a 404 saying why."""
        opened = open_indexed(load_photo(request, photo_id), settings.photo_roots)
        return file_response(opened)

    @app.get("/api/status", response_model=StatusOut, tags=["meta"])
    def status(request: Request) -> StatusOut:
        index_size = len(engine(request).index)
        return StatusOut.model_validate(get_status(settings, request.app.state.db, index_size))

    return app

