"""The shared face photos (`shared/data/faces/`, see its README): labelled folders, one per
person, and `unlabelled/` for end-to-end checks. Tests copy them; they skip only outside CI."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

PEOPLE = {"alex_lacamoire": "Alex Lacamoire", "biden": "Joe Biden",
          "kit_harington": "Kit Harington", "obama": "Barack Obama",
          "rose_leslie": "Rose Leslie"}
#: Who each unlabelled photo shows (its README).
UNLABELLED = {"alex_lacamoire1.jpg": {"alex_lacamoire"}, "johnsnow_test1.jpg": {"kit_harington"},
              "kit_with_rose.jpg": {"kit_harington", "rose_leslie"}, "obama1.jpg": {"obama"},
              "obama_and_biden.jpg": {"obama", "biden"}, "two_people.jpg": {"obama", "biden"}}


def faces_folder() -> Path:
    """The shared folder: CAPDEX_TEST_FACES, else `shared/` beside the checkout or /work."""
    here = Path(__file__).resolve().parents[1]
    candidates = [os.environ.get("CAPDEX_TEST_FACES"), here.parent / "shared/data/faces",
                  "/work/shared/data/faces"]
    for candidate in candidates:
        if candidate and (Path(candidate) / "obama").is_dir():
            return Path(candidate)
    if os.environ.get("CI"):
        pytest.fail("CI must run the face tests, but shared/data/faces is not beside the checkout")
    pytest.skip("the shared face photos (shared/data/faces) are not here")


def copy_labelled(target: Path) -> Path:
    """The labelled folders copied to `target` (writable, as a library would be)."""
    source = faces_folder()
    for folder in PEOPLE:
        shutil.copytree(source / folder, target / folder)
    return target


def copy_all(target: Path) -> Path:
    copy_labelled(target)
    shutil.copytree(faces_folder() / "unlabelled", target / "unlabelled")
    return target


def needs_faces() -> None:
    """Skip (outside CI) when the `faces` extra is not installed."""
    from capdex.captioners.faces import FaceEngine, FacesUnavailable

    try:
        FaceEngine().check_installed()
    except FacesUnavailable as exc:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the face tests: {exc}")
        pytest.skip(str(exc))
