"""`capdex serve` through the CLI runner, without binding: it refuses an open bind without a key."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from capdex.api import cli

runner = CliRunner()


@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch) -> list:
    """Records the settings `serve` would run the server with, instead of binding."""
    calls: list = []
    monkeypatch.setattr(cli, "_run_server", calls.append)
    return calls


def serve(*args: str, env: dict[str, str] | None = None):
    return runner.invoke(cli.app, ["serve", *args], env=env)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.10", "my-nas.local"])
def test_refuses_a_network_address_without_a_key(host: str, started: list, data_dir: Path) -> None:
    result = serve("--host", host, "--data-dir", str(data_dir))
    assert result.exit_code != 0 and not started
    assert "CAPDEX_API_KEY" in result.stderr and "--insecure" in result.stderr


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1"])
def test_loopback_needs_no_key(host: str, started: list, data_dir: Path) -> None:
    result = serve("--host", host, "--data-dir", str(data_dir))
    assert result.exit_code == 0, result.stderr
    assert started[0].host == host and started[0].api_key is None


def test_a_key_allows_a_network_address(started: list, data_dir: Path) -> None:
    result = serve("--host", "0.0.0.0", "--data-dir", str(data_dir),
                   env={"CAPDEX_API_KEY": "s3cret-enough-for-a-test"})
    assert result.exit_code == 0, result.stderr
    assert started[0].api_key.get_secret_value() == "s3cret-enough-for-a-test"


def test_insecure_allows_a_network_address_without_a_key(started: list, data_dir: Path) -> None:
    result = serve("--host", "0.0.0.0", "--insecure", "--data-dir", str(data_dir))
    assert result.exit_code == 0, result.stderr
    assert started[0].host == "0.0.0.0"


def test_photo_roots_from_flags_and_environment(started: list, data_dir: Path, tmp_path: Path) -> None:
    result = serve("--photo-root", str(tmp_path / "a"), "--photo-root", str(tmp_path / "b" / ".."),
                   "--data-dir", str(data_dir), env={"CAPDEX_PHOTO_ROOTS": str(tmp_path / "c")})
    assert result.exit_code == 0, result.stderr
    assert started[0].photo_roots == [tmp_path / "c", tmp_path / "a", tmp_path]


def test_serve_help_mentions_the_page_and_the_flags() -> None:
    result = serve("--help")
    assert result.exit_code == 0
    assert "--photo-root" in result.stdout and "--insecure" in result.stdout
