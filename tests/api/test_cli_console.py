"""What the console shows around a run: one progress line that leaves nothing behind, and no
line per HTTP request unless asked for."""

from __future__ import annotations

import io
import logging
import re
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from capdex.api import cli

runner = CliRunner()


def screen(output: str, rows: int = 10) -> list[str]:
    """The lines a terminal shows after `output` (the cursor moves rich's live display uses)."""
    lines = [""] * rows
    row = col = 0
    for token in re.findall(r"\x1b\[[0-9;?]*[A-Za-z]|\r|\n|[^\x1b\r\n]", output):
        if token == "\r":
            col = 0
        elif token == "\n":
            row += 1
        elif token.startswith("\x1b["):
            if token.endswith("A"):
                row -= int(token[2:-1] or 1)
            elif token == "\x1b[2K":
                lines[row] = ""
        else:
            lines[row] = lines[row][:col].ljust(col) + token + lines[row][col + 1:]
            col += 1
    return [line.rstrip() for line in lines]


def test_progress_is_one_line_and_leaves_nothing_behind() -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=80, color_system=None)
    display = cli._progress(enabled=True, console=console)
    with display as progress:
        for stage, total in (("scan", 18), ("hash", 18), ("caption", 18), ("ocr", 18)):
            progress(stage, 0, total)
            progress(stage, total, total)
            display._bar.refresh()
        progress("embed", 0, 1)  # the indexer reports the last stage before its work
        display._bar.refresh()
        during = screen(out.getvalue())
        console.print("a log line", highlight=False)  # goes above the live line
    assert [line for line in during if line] == [during[0]], during  # one line, not a stack
    assert during[0].startswith("indexing captions") and "0/1" in during[0]
    shown = screen(out.getvalue())
    assert shown[0] == "a log line" and not any(shown[1:]), shown  # nothing stale is left


@pytest.mark.parametrize(("flags", "access_log"), [([], False), (["-v"], True)])
def test_serve_logs_each_request_only_when_verbose(flags: list[str], access_log: bool,
                                                   monkeypatch: pytest.MonkeyPatch,
                                                   data_dir: Path) -> None:
    import uvicorn

    runs: list[dict] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: runs.append(options))
    monkeypatch.setattr(logging.getLogger(), "level", logging.WARNING)
    result = runner.invoke(cli.app, [*flags, "serve", "--data-dir", str(data_dir)])
    assert result.exit_code == 0, result.output
    assert runs[0]["access_log"] is access_log and runs[0]["log_level"] == "info"
