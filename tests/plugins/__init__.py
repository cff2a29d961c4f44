"""Captioner plugins for tests that run capdex in a subprocess (registered via entry points)."""
from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def install_entry_point(site: Path) -> Path:
    """A dist-info folder in `site` declaring the slow captioner as a `capdex.captioners` plugin,
    exactly as an installed plugin package would."""
    info = site / "capdex_test_plugins-0.dist-info"
    info.mkdir(parents=True, exist_ok=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: capdex-test-plugins\nVersion: 0\n")
    (info / "entry_points.txt").write_text(
        "[capdex.captioners]\ntest-slow = tests.plugins.slow_captioner:SlowColourCaptioner\n"
    )
    return site


def subprocess_env(site: Path, **extra: str) -> dict[str, str]:
    """Environment for `python -m capdex.api.cli ...` with this worktree and the plugin importable."""
    # The session's one ONNX export of the embedder is shared (see tests/conftest.py).
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("CAPDEX_") or k == "CAPDEX_EMBEDDER_ONNX_DIR"}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(install_entry_point(site))])
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", PYTHONUNBUFFERED="1")
    env.update(extra)
    return env


def capdex_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "capdex.api.cli", *args]
