"""Plain `--help` for the `capdex` command, laid out as click-based CLIs such as `llm` read at
80 columns: `Usage: capdex search [OPTIONS] QUERY`, `-k, --limit N`, one short line per option,
no boxes.

Typer's own help boxes every section with rich and names values by their Python types
(`<int range>`, `<list[Path]>`, `{query}`), which squeezes descriptions to ~20 characters on an
80-column terminal. `PlainGroup` replaces that formatting for every command it hands out,
including commands added later and sub-groups (`capdex models ...`), so a new command needs
nothing special to get it.
"""

from __future__ import annotations

import re
from typing import Any

from typer.core import TyperCommand, TyperGroup

# Typer builds on click (its own vendored copy in recent versions): everything below uses only
# what click's Parameter, Context and HelpFormatter have in every version, reached through
# typer's classes rather than by importing one click or the other.
Context = Any
Formatter = Any


def metavar(param: Any) -> str:
    """The placeholder for a parameter's value: its own `metavar`, else one from its type."""
    if param.metavar:
        return param.metavar
    if param.param_type_name == "argument":
        return (param.name or "ARG").upper() + ("..." if param.nargs != 1 else "")
    descriptor = getattr(param, "type_descriptor", None)
    annotation = getattr(descriptor, "annotation", None)
    if descriptor is not None and descriptor.is_path:
        return "PATH"
    if annotation is int:
        return "N"
    if annotation is float:
        return "NUMBER"
    return "TEXT"


def _option_record(option: Any, ctx: Context) -> tuple[str, str] | None:
    if option.hidden:
        return None
    names = ", ".join(sorted(option.opts, key=lambda name: name.startswith("--")))  # -k, --limit
    if option.secondary_opts:
        names += " / " + ", ".join(option.secondary_opts)
    elif not option.is_flag and not option.count:
        names += " " + metavar(option)
    extra = []
    envvar = option.envvar if option.show_envvar else None
    if envvar:
        extra.append(f"env var: {envvar if isinstance(envvar, str) else ', '.join(envvar)}")
    default = option.default
    show = option.show_default if option.show_default is not None else ctx.show_default
    if isinstance(option.show_default, str):
        extra.append(f"default: {option.show_default}")
    elif show and not option.is_flag and default not in (None, "", (), []) \
            and not callable(default):
        extra.append(f"default: {default}")
    text = option.help or ""
    if extra:
        text = f"{text}  [{'; '.join(extra)}]" if text else f"[{'; '.join(extra)}]"
    return names, text


class PlainCommand(TyperCommand):
    """A command whose help is click's plain layout with readable placeholders."""

    def format_help(self, ctx: Context, formatter: Formatter) -> None:
        super(TyperCommand, self).format_help(ctx, formatter)  # click's, not typer's rich one

    def collect_usage_pieces(self, ctx: Context) -> list[str]:
        pieces = [self.options_metavar] if self.options_metavar else []
        for param in self.get_params(ctx):
            if param.param_type_name == "argument":
                name = metavar(param)
                pieces.append(name if param.required else f"[{name}]")
        return pieces

    def format_options(self, ctx: Context, formatter: Formatter) -> None:
        params = self.get_params(ctx)
        arguments = [(metavar(p), getattr(p, "help", None) or "") for p in params
                     if p.param_type_name == "argument" and not getattr(p, "hidden", False)]
        options = [record for p in params
                   if p.param_type_name == "option" and (record := _option_record(p, ctx))]
        if any(text for _, text in arguments):
            with formatter.section("Arguments"):
                formatter.write_dl(arguments)
        if options:
            with formatter.section("Options"):
                formatter.write_dl(options)


class PlainGroup(TyperGroup):
    """A command group with plain help, handing out its commands with plain help too."""

    def get_command(self, ctx: Context, cmd_name: str) -> Any:
        return plain(super().get_command(ctx, cmd_name))

    def format_help(self, ctx: Context, formatter: Formatter) -> None:
        super(TyperGroup, self).format_help(ctx, formatter)  # click's, not typer's rich one

    def format_options(self, ctx: Context, formatter: Formatter) -> None:
        PlainCommand.format_options(self, ctx, formatter)  # type: ignore[arg-type]  # any click Command
        self.format_commands(ctx, formatter)

    def format_commands(self, ctx: Context, formatter: Formatter) -> None:
        rows = []
        for name in self.list_commands(ctx):
            command = self.get_command(ctx, name)
            if command is not None and not command.hidden:
                rows.append((name, command))
        if rows:
            limit = formatter.width - 6 - max(len(name) for name, _ in rows)
            with formatter.section("Commands"):
                formatter.write_dl([(name, short_help(command, limit)) for name, command in rows])

    def collect_usage_pieces(self, ctx: Context) -> list[str]:
        return [*PlainCommand.collect_usage_pieces(self, ctx),  # type: ignore[arg-type]  # any click Command
                self.subcommand_metavar]


def short_help(command: Any, limit: int) -> str:
    """A command's one-line summary: its docstring's first sentence, or the part of it before a
    colon, semicolon or comma when the sentence is too long (click would cut it mid-phrase)."""
    text = command.short_help or " ".join((command.help or "").split("\n\n")[0].split())
    sentence = re.split(r"(?<=[.!?])\s", text, maxsplit=1)[0].rstrip(".")
    if len(sentence) <= limit:
        return sentence
    for mark in (":", ";", " (", ","):
        head = sentence[:limit].rsplit(mark, 1)[0]
        if mark in sentence[:limit] and len(head) >= limit // 3:
            return head
    return sentence[: limit - 1].rsplit(" ", 1)[0] + "…"


def plain(command: Any) -> Any:
    """`command` with plain help: typer builds its commands itself, so their class is switched
    (both classes share typer's state; only the help methods differ)."""
    if type(command) is TyperCommand:
        command.__class__ = PlainCommand
    elif type(command) is TyperGroup:
        command.__class__ = PlainGroup
    return command
