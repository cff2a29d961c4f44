"""`capdex models ...`: list, download and export captioning models.

Mounted by api/cli.py as `app.add_typer(models_app, name="models")`.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Annotated, Any

import typer

from capdex.api.cli_common import DataDir, JsonOpt
from capdex.settings import Settings
from capdex.captioners import catalog
from capdex.captioners.base import CaptionerError

models_app = typer.Typer(
    name="models",
    help="List, download and export captioning models.",
    no_args_is_help=True,
    add_completion=False,
)



def _settings(data_dir: Path | None, **overrides: object) -> Settings:
    values: dict[str, Any] = {k: v for k, v in overrides.items() if v is not None}
    if data_dir is not None:
        values["data_dir"] = data_dir
    return Settings(**values)


def _human_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"


@models_app.command("list")
def list_models(
    as_json: JsonOpt = False,
    data_dir: DataDir = None,
) -> None:
    """Every model capdex knows: its hub id, whether it is installed, where and how large."""
    settings = _settings(data_dir)
    try:
        statuses = catalog.statuses(settings)
    except CaptionerError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    if as_json:
        typer.echo(json.dumps({"models": [dataclasses.asdict(s) for s in statuses]}, indent=2))
        return
    _print_statuses(settings, statuses)
    typer.echo("A model folder from elsewhere: --model-path DIR (CAPDEX_MODEL_PATH); hf-vlm's\n"
               "hub model: CAPDEX_CAPTIONER_MODEL.")


def _print_statuses(settings: Settings, statuses: list[catalog.ModelStatus]) -> None:
    """One entry per model, plain text that wraps at the terminal's width without cutting a
    name: what it is, whether it can run here, and what it needs when it cannot."""
    import shutil
    import textwrap

    from capdex.api.captioner_choices import missing

    width = min(shutil.get_terminal_size((80, 24)).columns, 100)
    name_width = max((len(s.name) for s in statuses), default=0) + 2
    indent = " " * (name_width + 2)
    typer.echo(f"Models in {settings.models_dir}")
    for s in statuses:
        need = missing(s.name, settings)
        if s.kind == "http":
            state = "needs setup" if need else "ready"
            detail = f"{s.model or ''} at {s.endpoint or ''}".strip()
        elif s.installed:
            state = "installed"
            size = f", {_human_size(s.size_bytes)}" if s.size_bytes else ""
            where = s.path or ("a plugin" if s.kind == "plugin" else "ships with capdex")
            detail = f"{s.hub_id + ': ' if s.hub_id else ''}{where}{size}"
        else:
            state = "not installed"
            fetch = f" (~{_human_size(s.download_size)} to fetch)" if s.download_size else ""
            detail = f"{s.hub_id or s.description}{fetch}"
        typer.echo(f"  {s.name:<{name_width}}{state}")
        for text in (detail, need if state != "installed" else None):
            if text:
                typer.echo(textwrap.fill(text, width, initial_indent=indent,
                                         subsequent_indent=indent, break_long_words=False,
                                         break_on_hyphens=False))


@models_app.command("download")
def download(
    name: Annotated[str, typer.Argument(help="Model name, as in `capdex models list`.")],
    model: Annotated[
        str | None,
        typer.Option("--model", metavar="ID", help="hf-vlm only: the hub id to fetch, e.g. "
                     "Qwen/Qwen2-VL-2B-Instruct (default: CAPDEX_CAPTIONER_MODEL, else "
                     "SmolVLM-256M-Instruct)."),
    ] = None,
    data_dir: DataDir = None,
) -> None:
    """Download a model into the data directory's models/ folder."""
    settings = _settings(data_dir)
    if model is not None:
        choosable = [n for n, spec in catalog.specs().items() if spec.choosable]
        if name not in choosable:
            typer.echo(f"error: --model only applies to models that take a hub id "
                       f"({', '.join(choosable)})",
                       err=True)
            raise typer.Exit(2)
        settings = settings.model_copy(update={"captioner": name, "captioner_model": model,
                                               "model_path": None})
    try:
        folder = catalog.download(name, settings, progress=lambda msg: typer.echo(msg, err=True))
    except CaptionerError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"{name} installed in {folder} ({_human_size(catalog.folder_size(folder))})")
    if model is not None:
        typer.echo(f"caption with it: CAPDEX_CAPTIONER_MODEL={model} capdex index PATH "
                   f"--captioner {name}")


@models_app.command("export")
def export(
    name: Annotated[str, typer.Argument(help="Model to export; only im2txt can be.")],
    model_path: Annotated[
        Path | None,
        typer.Option("--model-path", metavar="DIR",
                     help="im2txt folder (default: the data dir's models/im2txt)."),
    ] = None,
    data_dir: DataDir = None,
) -> None:
    """Export im2txt to ONNX (into its folder's onnx/), for the im2txt-onnx captioner."""
    if name != "im2txt":
        typer.echo(f"error: only im2txt can be exported, not {name!r}", err=True)
        raise typer.Exit(2)
    settings = _settings(data_dir, captioner="im2txt", model_path=model_path)
    try:
        from capdex.captioners.im2txt.export import export_onnx

        folder = catalog.require_installed("im2txt", settings)
        written = export_onnx(folder)
    except CaptionerError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    for path in written:
        typer.echo(f"wrote {path} ({_human_size(path.stat().st_size)})")
    hint = f" --model-path {folder}" if model_path is not None else ""
    typer.echo(f"caption with it: capdex caption IMAGE --captioner im2txt-onnx{hint}")
