"""`capdex ask`: answers from the library citing photos, or (--photo) a question about one photo.

Registered on the main app by api/cli.py (`register(app)`). Exit codes: 0 answered; 2 bad input
or nothing to answer with (no LLM configured, a captioner that takes no prompt); 1 the LLM or
model failed.
"""

from pathlib import Path
from typing import Annotated, Any

import typer

LLM_HELP = "Protocol of the LLM: openai (also llama.cpp's and vLLM's servers), ollama, anthropic."


def register(app: typer.Typer) -> None:
    """Add `ask` to the `capdex` app."""
    from capdex.api import cli_common as cli
    from capdex.search.request import MAX_QUERY_LENGTH

    @app.command()
    def ask(
        question: Annotated[str, typer.Argument(help='e.g. "when did we last go to the beach?"')],
        k: Annotated[int | None, typer.Option("-k", "--limit", min=1, max=50, metavar="N",
                     help="How many of the best matching photos the LLM reads (default "
                     "8).")] = None,
        photo: Annotated[int | None, typer.Option("--photo", metavar="ID", min=1, max=cli.MAX_ID,
                         help="Ask about this one photo "
                         "(its id) with a captioner that takes a prompt, instead.")] = None,
        llm: Annotated[str | None, typer.Option("--llm", metavar="PROTOCOL", envvar="CAPDEX_LLM",
                       help=LLM_HELP)] = None,
        llm_endpoint: Annotated[str | None, typer.Option("--llm-endpoint", metavar="URL", envvar=
                                "CAPDEX_LLM_ENDPOINT", help="Base URL of the LLM, e.g. "
                                "http://127.0.0.1:11434 (Ollama).")] = None,
        llm_model: Annotated[str | None, typer.Option("--llm-model", metavar="NAME",
                             envvar="CAPDEX_LLM_MODEL", help="Model name for the LLM.")] = None,
        llm_api_key: Annotated[str | None, typer.Option("--llm-api-key", metavar="KEY", envvar=
                               "CAPDEX_LLM_API_KEY", help="Key for the LLM (prefer the "
                               "environment variable: command lines are visible to others).",
                               show_envvar=True)] = None,
        captioner: cli.CaptionerOpt = None,
        model_path: cli.ModelPathOpt = None,
        endpoint: cli.EndpointOpt = None,
        model: cli.ModelOpt = None,
        data_dir: cli.DataDir = None,
        as_json: cli.JsonOpt = False,
    ) -> None:
        """Answer a question from your photos, citing them.

        An LLM answers from the best matching photos' captions, text, dates, places and people,
        citing each photo it relies on by its id. With --photo, a vision model answers about
        one photo."""
        if not question.strip() or len(question) > MAX_QUERY_LENGTH:
            cli._fail(f"the question must be 1 to {MAX_QUERY_LENGTH} characters")
        settings = cli._settings(data_dir=data_dir, llm=llm, llm_endpoint=llm_endpoint,
                                 llm_model=llm_model, llm_api_key=llm_api_key, captioner=captioner,
                                 model_path=model_path, captioner_endpoint=endpoint,
                                 captioner_model=model)
        db = cli._database(settings)
        if photo is not None:
            _ask_photo(settings, db, photo, question, as_json)
        else:
            _ask_library(settings, db, question, k, as_json)


def _ask_library(settings: Any, db: Any, question: str, k: int | None, as_json: bool) -> None:
    from capdex.api import cli_common as cli
    from capdex.search.ask import AskError, Asker, AskUnavailable
    from capdex.search.engine import SearchEngine
    from capdex.search.request import SearchRequestError

    asker = Asker(settings, SearchEngine(settings, db))
    try:
        if as_json:
            cli._print_json(asker.ask(question, k).as_dict())
            return
        answering = asker.answering(question, k)
        for note in answering.result.notes:
            typer.echo(f"note: {note}", err=True)
        for piece in answering:
            typer.echo(piece, nl=False)
        typer.echo()
        _print_photos(answering.result.photos)
        if answering.result.truncated:
            typer.echo("note: the answer was cut at its length limit", err=True)
    except SearchRequestError as exc:
        cli._fail(str(exc).replace("q: the query", "the question", 1))
    except AskError as exc:
        if as_json:
            cli._print_json({"detail": str(exc), **exc.result.as_dict()})
        else:
            typer.echo()
            _print_photos(exc.result.photos)
        cli._fail(str(exc), 2 if isinstance(exc, AskUnavailable) else 1)


def _print_photos(photos: list[dict[str, Any]]) -> None:
    if not photos:
        return
    typer.echo("\nPhotos (* cited):")
    for photo in photos:
        taken = f"  {photo['taken_at'][:10]}" if photo.get("taken_at") else ""
        mark = "*" if photo.get("cited") else " "
        typer.echo(f"{mark} [#{photo['id']}] {photo['path']}{taken}\n        {photo['caption']}")


def _ask_photo(settings: Any, db: Any, photo_id: int, question: str, as_json: bool) -> None:
    from capdex.api import cli_common as cli
    from capdex.api.photos import load_photo
    from capdex.captioners import CaptionerError, QuestionsNotSupported
    from capdex.captioners.questions import answerer
    from capdex.images import ImageLoadError, load_image
    from capdex.paths import to_fs

    if not question.strip():
        cli._fail("the question is blank")
    try:
        model = answerer(settings.captioner, settings)
    except (QuestionsNotSupported, CaptionerError) as exc:
        cli._fail(f"{exc}; choose one with --captioner")
    found = load_photo(db, photo_id)
    if found is None:
        cli._fail(f"no photo with id {photo_id}")
    files = [to_fs(f.path) for f in found.files if Path(to_fs(f.path)).is_file()]
    if not files:
        cli._fail(f"photo {photo_id} has no file on disk any more")
    try:
        image = load_image(files[0], max_pixels=settings.max_image_pixels,
                           size_hint=model.input_size)
        answer = model.answer(image, question)
    except ImageLoadError as exc:
        cli._fail(f"{files[0]}: {exc}")
    except CaptionerError as exc:
        cli._fail(str(exc), 1)
    finally:
        model.close()
    if as_json:
        cli._print_json({"id": photo_id, "question": question, "answer": answer,
                         "captioner": settings.captioner})
    else:
        typer.echo(answer)
