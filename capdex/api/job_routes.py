"""HTTP face of index jobs: start one, poll it, stop it, re-caption a photo, list captioners."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Path, Request
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from capdex.api.jobs import Job, JobError, JobRunner
from capdex.api.photo_routes import PhotoId, photo_or_404

router = APIRouter(tags=["index"])

CaptionerName = Annotated[str, StringConstraints(min_length=1, max_length=100,
                                                 pattern=r"^[A-Za-z0-9][A-Za-z0-9._:/+-]*$")]
PathText = Annotated[str, StringConstraints(min_length=1, max_length=4096)]
JobId = Annotated[str, Path(pattern=r"^[0-9a-f]{12}$", description="A job id from POST /api/index.")]


class IndexRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    paths: list[PathText] = Field(default_factory=list, max_length=100, description=(
        "Absolute folders or photos under the photo roots; empty means every root."))
    captioner: CaptionerName | None = Field(default=None, description=(
        "Captioning model (GET /api/captioners); default: the server's."))
    recaption: bool = Field(default=False, description=(
        "Also re-caption machine captions made by another captioner or version."))


class RecaptionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    captioner: CaptionerName | None = Field(default=None, description=(
        "Captioning model to use (GET /api/captioners); default: the server's."))


class JobOut(BaseModel):
    id: str
    kind: Literal["index", "recaption"]
    state: Literal["running", "done", "failed", "cancelled"]
    stage: str = Field(description="starting, scan, hash, caption, embed, or the final state.")
    done: int
    total: int
    captioner: str
    paths: list[str]
    photo_ids: list[int]
    recaption: bool
    started_at: datetime
    finished_at: datetime | None
    summary: dict[str, Any] | None = Field(description="Counts of the finished run.")
    error: str | None

    @classmethod
    def of(cls, job: Job) -> JobOut:
        return cls(id=job.id, kind=job.kind, state=job.state, stage=job.stage, done=job.done,
                   total=job.total, captioner=job.captioner, paths=job.paths,
                   photo_ids=job.photo_ids, recaption=job.recaption, started_at=job.started_at,
                   finished_at=job.finished_at, summary=job.summary, error=job.error)


class JobsOut(BaseModel):
    current: JobOut | None
    jobs: list[JobOut] = Field(description="Recent jobs, newest first.")
    photo_roots: list[str] = Field(description="Folders POST /api/index may index.")


class CaptionersOut(BaseModel):
    default: str
    captioners: list[str]
    unavailable: dict[str, str] = Field(default_factory=dict, description=(
        "Captioners that cannot run on this server yet, with what each needs first."))


def _runner(request: Request) -> JobRunner:
    return request.app.state.jobs


def _started(call: Callable[[], Job]) -> JobOut:
    try:
        return JobOut.of(call())
    except JobError as exc:
        raise HTTPException(exc.status, exc.reason) from exc


_STARTED: dict[int | str, dict[str, Any]] = {202: {"description": "The job started; poll GET /api/jobs/{id}."},
            403: {"description": "A path is outside the photo roots, or there are none."},
            409: {"description": "A job is already running."},
            422: {"description": "Unknown captioner, missing path or malformed request."}}


@router.post("/api/index", response_model=JobOut, status_code=202, responses=_STARTED)
def start_index(request: Request, body: IndexRequest) -> JobOut:
    """Index folders under the photo roots in the background (one job at a time)."""
    runner = _runner(request)
    return _started(lambda: runner.start_index(body.paths, body.captioner, body.recaption))


@router.post("/api/photos/{photo_id}/recaption", response_model=JobOut, status_code=202,
             responses={**_STARTED, 404: {"description": "No such photo."}})
def recaption(request: Request, photo_id: PhotoId, body: RecaptionRequest) -> JobOut:
    """Caption one photo again with the chosen model, as a background job."""
    photo_or_404(request, photo_id)
    runner = _runner(request)
    return _started(lambda: runner.start_recaption([photo_id], body.captioner))


@router.get("/api/jobs", response_model=JobsOut)
def jobs(request: Request) -> JobsOut:
    runner = _runner(request)
    current = runner.current
    return JobsOut(current=JobOut.of(current) if current else None,
                   jobs=[JobOut.of(j) for j in runner.recent()],
                   photo_roots=[str(r) for r in request.app.state.settings.photo_roots])


@router.get("/api/jobs/{job_id}", response_model=JobOut,
            responses={404: {"description": "No such job (or forgotten)."}})
def job(request: Request, job_id: JobId) -> JobOut:
    found = _runner(request).get(job_id)
    if found is None:
        raise HTTPException(404, f"no job with id {job_id}")
    return JobOut.of(found)


@router.post("/api/jobs/{job_id}/cancel", response_model=JobOut, status_code=202,
             responses={404: {"description": "No such job (or forgotten)."}})
def cancel(request: Request, job_id: JobId) -> JobOut:
    """Ask a running job to stop after its current batch (what it finished is kept)."""
    found = _runner(request).cancel(job_id)
    if found is None:
        raise HTTPException(404, f"no job with id {job_id}")
    return JobOut.of(found)


@router.get("/api/captioners", response_model=CaptionersOut, tags=["meta"])
def captioners(request: Request) -> CaptionersOut:
    from capdex.captioners import registry

    from capdex.api.captioner_choices import unavailable

    settings = request.app.state.settings
    names = registry.names()
    return CaptionersOut(default=settings.captioner, captioners=names,
                         unavailable=unavailable(names, settings))
