"""Sample photos copied out of installed packages."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from capdex import samples
from capdex.samples import SAMPLES, SHOWN, SamplesUnavailableError, write_samples


def test_writes_every_sample_as_a_real_image(tmp_path: Path) -> None:
    paths = write_samples(tmp_path / "photos")
    assert [p.name for p in paths] == [s.filename for s in SAMPLES]
    for path in paths:
        with Image.open(path) as image:
            image.verify()
            assert image.format == {"png": "PNG", "jpg": "JPEG"}[path.suffix.lstrip(".")]


def test_keeps_the_original_bytes(tmp_path: Path) -> None:
    for sample, path in zip(SAMPLES, write_samples(tmp_path), strict=True):
        spec = importlib.util.find_spec(sample.module)
        original = Path(next(iter(spec.submodule_search_locations))) / sample.resource
        assert path.read_bytes() == original.read_bytes(), sample.filename


def test_is_idempotent_and_repairs_changed_files(tmp_path: Path) -> None:
    first = write_samples(tmp_path)
    mtimes = [p.stat().st_mtime_ns for p in first]
    first[0].write_bytes(b"damaged")

    second = write_samples(tmp_path)
    assert second == first
    assert [p.stat().st_mtime_ns for p in second[1:]] == mtimes[1:]  # untouched
    with Image.open(second[0]) as image:
        image.verify()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(s.filename for s in SAMPLES)


def test_table_is_complete() -> None:
    names = [s.filename for s in SAMPLES]
    assert len(set(names)) == len(names)
    assert {"chelsea-the-cat.png", "coffee-cup.png", "grace-hopper.jpg"} <= set(names)
    assert all(s.shows and s.licence and s.package for s in SAMPLES)


def test_missing_package_names_the_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        samples.importlib.util,
        "find_spec",
        lambda name, *a: None if name == "sklearn" else real_find_spec(name, *a),
    )
    expected = r"scikit-learn.*pip install 'capdex\[samples\]'"
    with pytest.raises(SamplesUnavailableError, match=expected):
        write_samples(tmp_path / "photos")
    assert not (tmp_path / "photos").exists()  # nothing half-written


def test_make_run_shows_real_scenes_and_the_tests_keep_the_hard_ones() -> None:
    shown = {s.filename for s in SHOWN}
    assert {"chelsea-the-cat.png", "coffee-cup.png", "red-motorcycle.png",
            "page-of-text.png"} <= shown  # things people photograph, and text for OCR
    hard = {s.filename for s in SAMPLES} - shown
    assert {"gravel.png", "grass.png", "brick-wall.png", "human-retina.jpg"} <= hard
    assert len(shown) >= 10


def test_command_line_writes_the_shown_photos_and_says_so_in_one_line(tmp_path: Path) -> None:
    def run(*args: str) -> list[str]:
        result = subprocess.run(
            [sys.executable, "-m", "capdex.samples", str(tmp_path), *args],
            capture_output=True, text=True, check=True, cwd=Path(__file__).resolve().parents[2],
        )
        return result.stdout.splitlines()

    assert run() == [f"{len(SHOWN)} sample photos in {tmp_path} ({len(SHOWN)} written)"]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(s.filename for s in SHOWN)
    assert run() == [f"{len(SHOWN)} sample photos in {tmp_path} (all already there)"]
    assert run("--all", "--list") == [str(tmp_path / s.filename) for s in SAMPLES]
