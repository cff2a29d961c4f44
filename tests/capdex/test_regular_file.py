"""Issue 20, points 1–2: every file capdex reads is opened without blocking, regular files only."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from capdex.images import ImageLoadError, decode_image
from capdex.indexer.read import hash_file, read_photo
from capdex.indexer.xmp import read_sidecar
from capdex.regular_file import NotRegularFile, open_regular, read_regular

pytestmark = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this system")


def within(seconds: float, call: Callable[[], object], fifo: Path) -> BaseException | None:
    """What `call` raised (None: nothing), failing if it blocks; a blocked read is let go by
    opening the FIFO for writing, so a failing test still ends."""
    outcome: list[BaseException | None] = []

    def target() -> None:
        try:
            call()
            outcome.append(None)
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            outcome.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        thread.join(10)
        pytest.fail(f"reading the FIFO {fifo.name} blocked")
    return outcome[0]


@pytest.fixture
def fifo(tmp_path: Path) -> Path:
    path = tmp_path / "photo.jpg"
    os.mkfifo(path)
    return path


@pytest.mark.parametrize("reader", [
    open_regular, read_regular, read_photo, hash_file, read_sidecar,
], ids=["open_regular", "read_regular", "read_photo", "hash_file", "read_sidecar"])
def test_a_fifo_is_refused_at_once_not_waited_for(fifo: Path, reader: Callable[[str], object]) -> None:
    error = within(10, lambda: reader(str(fifo)), fifo)
    assert isinstance(error, NotRegularFile) and "not a regular file" in str(error)


def test_decoding_a_fifo_named_like_a_photo_is_an_image_error(fifo: Path) -> None:
    error = within(10, lambda: decode_image(fifo, max_pixels=10**6), fifo)
    assert isinstance(error, ImageLoadError) and "not a regular file" in str(error)


def test_a_folder_and_a_device_are_refused_too(tmp_path: Path) -> None:
    with pytest.raises(NotRegularFile):
        open_regular(tmp_path)
    if os.path.exists("/dev/zero"):
        with pytest.raises(NotRegularFile):
            open_regular("/dev/zero")


def test_a_regular_file_reads_as_usual_and_blocking_is_restored(tmp_path: Path) -> None:
    path = tmp_path / "a.bin"
    path.write_bytes(b"x" * 100)
    with open_regular(path) as handle:
        assert os.get_blocking(handle.fileno())
        assert handle.read() == b"x" * 100
    assert read_regular(path, 10) == b"x" * 10
