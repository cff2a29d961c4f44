"""EXIF metadata: date taken, camera, lens, GPS position, upright size; broken tags lose only themselves."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
from PIL import Image
from PIL.TiffImagePlugin import IFDRational

from capdex.images import decode_image
from capdex.indexer.metadata import read_metadata


def photo_with_exif(path: Path, *, orientation: int = 1, gps: dict | None = None,
                    lens: tuple[str, str] | None = ("Canon", "RF24-105mm F4 L IS USM")) -> Path:
    exif = Image.Exif()
    exif[0x010F], exif[0x0110], exif[0x0112] = "Canon", "Canon EOS R5", orientation
    sub = exif.get_ifd(0x8769)
    sub[0x9003] = "2021:05:06 07:08:09"
    if lens:
        sub[0xA433], sub[0xA434] = lens
    if gps is not None:
        exif.get_ifd(0x8825).update(gps)
    Image.new("RGB", (60, 40), (10, 20, 30)).save(path, exif=exif)
    return path


SYDNEY = {1: "S", 2: (IFDRational(33, 1), IFDRational(51, 1), IFDRational(3549, 100)),
          3: "E", 4: (151.0, 12.0, 40.0)}


def metadata_of(path: Path):
    decoded = decode_image(path, max_pixels=10**8)
    return read_metadata(decoded.exif, decoded.size)


def test_date_camera_lens_and_gps(tmp_path: Path) -> None:
    meta = metadata_of(photo_with_exif(tmp_path / "a.jpg", gps=SYDNEY))
    assert meta.taken_at == datetime(2021, 5, 6, 7, 8, 9)
    assert (meta.camera_make, meta.camera_model) == ("Canon", "Canon EOS R5")
    assert meta.lens == "Canon RF24-105mm F4 L IS USM"
    assert meta.latitude == pytest.approx(-33.859858, abs=1e-6)
    assert meta.longitude == pytest.approx(151.211111, abs=1e-6)


def test_size_is_upright(tmp_path: Path) -> None:
    meta = metadata_of(photo_with_exif(tmp_path / "a.jpg", orientation=6))
    assert (meta.width, meta.height) == (40, 60)


@pytest.mark.parametrize("gps", [
    {1: "N", 2: (0.0, 0.0, 0.0), 3: "E", 4: (0.0, 0.0, 0.0)},  # a zeroed GPS block
    {1: "N", 2: (95.0, 0.0, 0.0), 3: "E", 4: (10.0, 0.0, 0.0)},  # latitude past the pole
    {1: "N", 2: (IFDRational(1, 0), 0.0, 0.0), 3: "E", 4: (10.0, 0.0, 0.0)},  # divide by zero
    {1: "N", 3: "E", 4: (10.0, 0.0, 0.0)},  # latitude missing
])
def test_nonsense_gps_is_no_position_and_keeps_the_rest(tmp_path: Path, gps: dict) -> None:
    meta = metadata_of(photo_with_exif(tmp_path / "a.jpg", gps=gps))
    assert (meta.latitude, meta.longitude) == (None, None)
    assert meta.camera_model == "Canon EOS R5" and meta.taken_at is not None


def test_no_exif_at_all(tmp_path: Path) -> None:
    path = tmp_path / "plain.png"
    Image.new("RGB", (30, 20)).save(path)
    meta = metadata_of(path)
    assert (meta.width, meta.height, meta.taken_at, meta.lens, meta.latitude) == (30, 20, None, None, None)


def test_lens_model_alone(tmp_path: Path) -> None:
    assert metadata_of(photo_with_exif(tmp_path / "a.jpg", lens=("", "XF35mmF1.4 R"))).lens == "XF35mmF1.4 R"
