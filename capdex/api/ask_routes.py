"""HTTP face of ask: `POST /api/ask` (answers from the library, whole or streamed as server-sent
events) and `POST /api/photos/{id}/ask` (a question about one photo, through a captioner that
takes a prompt).

The only 5xx answers are the documented ones: 503 when no LLM (or model) is available here, 502
when it failed; both say why, and `/api/ask`'s carry the retrieved photos. Asking never writes.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from capdex.api.photo_routes import PhotoId, decode_indexed, photo_or_404
from capdex.api.schemas import SearchHitOut
from capdex.search.ask import Answering, AskFailed, Asker, AskResult, AskUnavailable
from capdex.search.request import MAX_QUERY_LENGTH, SearchRequestError

if TYPE_CHECKING:
    from capdex.captioners import Captioner

log = logging.getLogger(__name__)
router = APIRouter(tags=["ask"])

Question = Annotated[str, StringConstraints(min_length=1, max_length=MAX_QUERY_LENGTH)]
CaptionerName = Annotated[str, StringConstraints(min_length=1, max_length=100,
                                                 pattern=r"^[A-Za-z0-9][A-Za-z0-9._:/+-]*$")]


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("the question is blank")
    return value


class AskIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    question: Question = Field(description='What to ask, e.g. "when did we last go to the '
                               'beach?"')
    k: int | None = Field(default=None, ge=1, le=50, description="How many of the best "
                          "matching photos the LLM reads (default CAPDEX_ASK_K, 8).")
    stream: bool = Field(default=False, description="Answer as server-sent events (text/event-"
                         "stream): `photos`, then `delta` pieces of the answer, then `done` "
                         "(the whole answer, as without stream) or `error`.")

    _check = field_validator("question")(_not_blank)


class AskPhotoOut(SearchHitOut):
    place: str | None = Field(default=None, description="Where it was taken, where known.")
    people: str | None = Field(default=None, description="Who is in it, where known.")
    cited: bool = Field(default=False, description="The answer cites this photo.")


class AskOut(BaseModel):
    question: str
    answer: str = Field(description="The LLM's answer; it cites photos as [#ID], only ids "
                        "of `photos`.")
    photos: list[AskPhotoOut] = Field(description="The photos the LLM read, best first.")
    model: str | None = Field(description="The model that answered (null: none was asked, "
                              "because no photo matched).")
    cited: list[int] = Field(description="Ids the answer cites, in order of first citation.")
    total: int = Field(description="Photos the question's search matched in all.")
    notes: list[str] = Field(default_factory=list, description="Anything that limited the "
                             "search or the answer.")
    truncated: bool = Field(default=False, description="The answer was cut at its length limit.")


class AskErrorOut(BaseModel):
    detail: str = Field(description="Why there is no answer, and what to do about it.")
    question: str
    photos: list[AskPhotoOut] = Field(description="The photos the question retrieved, best "
                                      "first: useful without an answer.")


class PhotoAskIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    question: Question = Field(description='e.g. "what does the sign say?"')
    captioner: CaptionerName | None = Field(default=None, description=(
        "A captioner that takes a prompt (moondream2, hf-vlm, ollama, openai, anthropic); "
        "default: the server's captioner."))

    _check = field_validator("question")(_not_blank)


class PhotoAskOut(BaseModel):
    id: int
    question: str
    answer: str
    captioner: str = Field(description="The captioner that answered.")


_ASK_ERRORS: dict[int | str, dict[str, Any]] = {
    422: {"description": "A blank or overlong question, or k out of range."},
    502: {"model": AskErrorOut, "description": "The LLM failed: unreachable, too slow, an "
          "error, or an answer that is not what its protocol promises."},
    503: {"model": AskErrorOut, "description": "No LLM is configured (CAPDEX_LLM_ENDPOINT)."},
}
#: With stream=true, each server-sent event (as OpenAPI 3.1 describes a stream: one event).
_STREAM = {"text/event-stream": {"schema": {
    "type": "object", "required": ["event", "data"],
    "description": "With stream=true: `photos` ({question, photos, total, notes}), `delta` "
                   "({text}) pieces of the answer, then `done` (the JSON answer, as without "
                   "stream) or `error` ({status, detail}).",
    "properties": {
        "event": {"type": "string", "enum": ["photos", "delta", "done", "error"]},
        "data": {"type": "string", "contentMediaType": "application/json"},
    }}}}

_lock = threading.Lock()


def _asker(request: Request) -> Asker:
    state = request.app.state
    with _lock:
        if getattr(state, "asker", None) is None:
            state.asker = Asker(state.settings, state.engine)
        return state.asker


def _out(result: AskResult) -> AskOut:
    return AskOut.model_validate({**result.as_dict(), "answer": result.answer or ""})


def _error(status: int, exc: AskUnavailable | AskFailed) -> JSONResponse:
    body = AskErrorOut(detail=str(exc), question=exc.result.question,
                       photos=[AskPhotoOut.model_validate(p) for p in exc.result.photos])
    return JSONResponse(body.model_dump(mode="json"), status_code=status)


@router.post("/api/ask", response_model=AskOut, responses={**_ASK_ERRORS, 200: {"content": _STREAM}})
def ask(request: Request, body: AskIn) -> Any:
    """Answer a question from the library: search for it, let an LLM read the best photos'
    captions, text, dates, places and people, and return its answer citing them."""
    asker = _asker(request)
    try:
        if body.stream:
            answering = asker.answering(body.question, body.k)
            return StreamingResponse(_events(answering), media_type="text/event-stream",
                                     headers={"Cache-Control": "no-cache",
                                              "X-Accel-Buffering": "no"})
        return _out(asker.ask(body.question, body.k))
    except SearchRequestError as exc:
        raise HTTPException(422, str(exc)) from exc
    except AskUnavailable as exc:
        return _error(503, exc)
    except AskFailed as exc:
        return _error(502, exc)


def _sse(event: str, data: object) -> str:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


def _events(answering: Answering) -> Iterator[str]:
    """The answer as server-sent events; a failure midway is an `error` event (the status
    line went out with the first event)."""
    result = answering.result
    try:
        photos = [AskPhotoOut.model_validate(p).model_dump(mode="json") for p in result.photos]
        yield _sse("photos", {"question": result.question, "photos": photos,
                              "total": result.total, "notes": result.notes})
        for piece in answering:
            yield _sse("delta", {"text": piece})
        yield _sse("done", _out(result).model_dump(mode="json"))
    except AskFailed as exc:
        yield _sse("error", {"status": 502, "detail": str(exc)})
    except Exception:  # the stream has started: say so in it, log the rest
        log.exception("ask failed while streaming")
        yield _sse("error", {"status": 500, "detail": "internal error; the server log has the "
                                                      "details"})
    finally:
        answering.close()


# -- one photo ----------------------------------------------------------------------------------
@router.post("/api/photos/{photo_id}/ask", response_model=PhotoAskOut, responses={
    404: {"description": "No such photo, or its file is gone or unreadable."},
    422: {"description": "A blank question, an unknown captioner, or one that takes no prompt "
          "(the message names those that do)."},
    502: {"description": "The model failed to answer (e.g. its server is down)."},
    503: {"description": "The captioner's model or package is not installed here."},
}, tags=["photos"])
def ask_photo(request: Request, photo_id: PhotoId, body: PhotoAskIn) -> PhotoAskOut:
    """Ask a vision model a question about one photo ("what colour is the car?")."""
    from capdex.captioners import (
        CaptionerError,
        MissingDependencyError,
        ModelNotInstalledError,
        QuestionsNotSupported,
    )
    settings = request.app.state.settings
    photo = photo_or_404(request, photo_id)
    name = body.captioner or settings.captioner
    try:
        captioner = _answerer(request, name)
    except (QuestionsNotSupported, CaptionerError) as exc:
        raise HTTPException(422, str(exc)) from exc
    image = decode_indexed(request, photo, captioner.input_size)
    try:
        answer = captioner.answer(image, body.question)
    except (MissingDependencyError, ModelNotInstalledError) as exc:
        raise HTTPException(503, str(exc)) from exc
    except CaptionerError as exc:
        raise HTTPException(502, str(exc)) from exc
    return PhotoAskOut(id=photo_id, question=body.question, answer=answer, captioner=name)


def _answerer(request: Request, name: str) -> Captioner:
    """One captioner per name for the server's life (its model loads once, unloads when idle)."""
    from capdex.captioners.questions import answerer

    state = request.app.state
    with _lock:
        cache = getattr(state, "answerers", None)
        if cache is None:
            cache = state.answerers = {}
        if name not in cache:
            cache[name] = answerer(name, state.settings)
        return cache[name]


def close(app: Any) -> None:
    """Let go of the LLM's and the answering captioners' connections and models (shutdown)."""
    state = app.state
    asker = getattr(state, "asker", None)
    if asker is not None:
        asker.close()
    for captioner in (getattr(state, "answerers", None) or {}).values():
        captioner.close()
