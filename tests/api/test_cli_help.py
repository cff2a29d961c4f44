"""`--help` reads like a well-kept CLI's at 80 columns: plain sections, short lines, readable
placeholders (`QUERY`, `-k, --limit N`), nothing cut."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from capdex.api.cli import app

runner = CliRunner()


def commands(group: Any = None, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """Every command path, the group itself first (`()`, `("search",)`, `("models", "list")`)."""
    group = group or typer.main.get_command(app)
    yield path
    for name in group.list_commands(None):
        command = group.get_command(None, name)
        if hasattr(command, "list_commands"):
            yield from commands(command, (*path, name))
        else:
            yield (*path, name)


def help_of(*path: str, columns: int = 80) -> str:
    result = runner.invoke(app, [*path, "--help"], env={"COLUMNS": str(columns)},
                           prog_name="capdex")
    assert result.exit_code == 0, result.output
    return result.stdout


@pytest.mark.parametrize("path", list(commands()), ids=lambda p: " ".join(p) or "capdex")
def test_every_help_fits_80_columns_without_boxes_or_type_names(path: tuple[str, ...]) -> None:
    text = help_of(*path)
    assert text.startswith(f"Usage: capdex {' '.join(path)}".replace("  ", " ").rstrip())
    for line in text.splitlines():
        assert len(line) <= 80, line
    for junk in ("╭", "│", "<bool>", "<str>", "<int", "<float", "<path>", "list["):
        assert junk not in text, f"{junk!r} in `capdex {' '.join(path)} --help`:\n{text}"
    assert not re.search(r"\{[a-z_]+\}", text), text  # typer's `{query}`


def test_search_help_reads_like_a_cli() -> None:
    text = help_of("search")
    assert text.startswith("Usage: capdex search [OPTIONS] QUERY\n")
    assert re.search(r"^  -k, --limit N\s+How many results\.", text, re.MULTILINE)
    assert re.search(r"^  --taken-after DATE\s+Only photos", text, re.MULTILINE)
    assert "--has-text / --no-text" in text
    # the default data dir is named in full, never cut
    assert "~/.local/share/capdex" in text and "CAPDEX_DATA_DIR" in text


def test_index_help_has_flags_not_pairs() -> None:
    text = help_of("index")
    assert text.startswith("Usage: capdex index [OPTIONS] PATH...\n")
    assert re.search(r"^  -c, --captioner NAME", text, re.MULTILINE)
    assert "--no-recaption" not in text and "--recaption" in text
    assert "--ocr / --no-ocr" in text  # a real choice (default from CAPDEX_OCR) stays a pair


def test_command_list_has_whole_one_line_summaries() -> None:
    text = help_of()
    listed = text.split("Commands:\n", 1)[1].splitlines()
    assert len(listed) == len(list(typer.main.get_command(app).list_commands(None)))
    for line in listed:
        assert not line.endswith(("...", "…")), line  # click's cut, mid-phrase


def test_limit_has_the_old_short_name_and_errors_name_the_option() -> None:
    result = runner.invoke(app, ["search", "x", "--limit", "many"], prog_name="capdex")
    assert result.exit_code == 2 and "'-k' / '--limit'" in result.stderr
    result = runner.invoke(app, ["search"], prog_name="capdex")
    assert result.exit_code == 2 and "Missing argument 'QUERY'" in result.stderr


@pytest.mark.parametrize("path", [p for p in commands() if p and p[-1] not in ("models", "people")],
                         ids=" ".join)
def test_options_are_named_alike_in_every_command(path: tuple[str, ...]) -> None:
    """`-k` is `--limit` everywhere, `--data-dir` reads (and takes CAPDEX_DATA_DIR) the same in
    every command, and no value is a bare `TEXT` or `PATH`."""
    text = help_of(*path)
    options = text.split("Options:\n", 1)[1]
    for line in options.splitlines():
        if line.startswith("  -k"):
            assert line.startswith("  -k, --limit N "), line
        bare = re.match(r"^  (-\w, )?--[\w-]+ (TEXT|PATH)\b(.*)", line)
        # a placeholder the help names ("contains TEXT") is chosen; one typer made up is not
        assert not bare or bare[2] in bare[3], f"capdex {' '.join(path)}: {line}"
    if "--data-dir" in options:
        assert re.search(r"^  --data-dir DIR\s+Where the index is kept", options, re.MULTILINE), text
        assert "CAPDEX_DATA_DIR" in options and "~/.local/share/capdex" in options, text
