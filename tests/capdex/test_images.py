"""Decoding: every odd but valid image comes out upright RGB; every hostile file is a clear refusal."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from capdex.images import ImageLoadError, decode_image
from tests.odd_files import layout, write_hostile, write_odd_but_valid

MAX_PIXELS = 120_000_000


@pytest.fixture(scope="module")
def odd(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    folder = tmp_path_factory.mktemp("odd")
    return folder, write_odd_but_valid(folder)


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    folder = tmp_path_factory.mktemp("hostile")
    return folder, write_hostile(folder)


def test_odd_but_valid_images_decode_upright_to_rgb(odd: tuple[Path, dict[str, str]]) -> None:
    folder, expected = odd
    names = sorted(os.listdir(folder))
    assert len(names) == 14
    for name in names:
        decoded = decode_image(folder / name, max_pixels=MAX_PIXELS, size_hint=64)
        assert decoded.image.mode == "RGB", name
        if name in expected:
            assert layout(decoded.image) == expected[name], name


def test_exif_rotation_swaps_the_reported_size(odd: tuple[Path, dict[str, str]]) -> None:
    folder, _ = odd
    decoded = decode_image(folder / "rotated.jpg", max_pixels=MAX_PIXELS)
    assert decoded.size == (48, 32) and decoded.image.size == (48, 32)  # stored as 32x48


def test_sixteen_bit_grey_keeps_its_range(odd: tuple[Path, dict[str, str]]) -> None:
    folder, _ = odd
    image = decode_image(folder / "grey16.png", max_pixels=MAX_PIXELS).image
    values = np.asarray(image)[..., 0]
    assert values.min() < 10 and values.max() > 245  # not flattened to white


def test_heic_decodes_through_pillow_heif(odd: tuple[Path, dict[str, str]]) -> None:
    folder, _ = odd
    decoded = decode_image(folder / "phone.HEIC", max_pixels=MAX_PIXELS)
    assert layout(decoded.image) == "blue over yellow" and decoded.size == (48, 32)


def test_hostile_files_are_refused_with_a_readable_reason(hostile: tuple[Path, dict[str, str]]) -> None:
    folder, expected = hostile
    for name, reason in expected.items():
        if name in ("broken-link.jpg", "pipe.jpg"):
            continue  # found by the scan, never opened
        with pytest.raises(ImageLoadError, match=reason):
            decode_image(folder / name, max_pixels=MAX_PIXELS)


def test_the_pixel_cap_is_the_setting_not_pillows_default(tmp_path: Path) -> None:
    from tests.odd_files import bomb_png

    path = tmp_path / "big.png"
    path.write_bytes(bomb_png(10_000, 10_000))  # 100M: over Pillow's 89M warning, under our cap
    with pytest.raises(ImageLoadError) as caught:
        decode_image(path, max_pixels=MAX_PIXELS)
    assert "limit" not in str(caught.value) and "bomb" not in str(caught.value)  # it was decoded
    with pytest.raises(ImageLoadError, match="over the limit of 1,000,000"):
        decode_image(path, max_pixels=1_000_000)


def test_a_pixel_cap_above_pillows_own_limit_takes_effect(tmp_path: Path) -> None:
    """Issue 20, point 9: CAPDEX_MAX_IMAGE_PIXELS above 179 MP had no effect: Pillow's own
    limit (twice its MAX_IMAGE_PIXELS) refused a 201-MP PNG before our check ran."""
    from tests.odd_files import bomb_png

    path = tmp_path / "huge.png"
    path.write_bytes(bomb_png(15_000, 13_400))  # 201 MP (its pixel data is a stub)
    with pytest.raises(ImageLoadError) as caught:
        decode_image(path, max_pixels=250_000_000)
    assert "bomb" not in str(caught.value) and "limit" not in str(caught.value)  # decoded
    with pytest.raises(ImageLoadError, match="over the limit of 200,000,000"):
        decode_image(path, max_pixels=200_000_000)


def test_heic_under_a_jpg_name_is_decoded(tmp_path: Path) -> None:
    import subprocess
    import sys

    from tests.odd_files import two_tone

    source = tmp_path / "a.heic"
    from capdex.images import register_heif

    register_heif()
    two_tone("green", "blue").save(source, quality=90)
    (tmp_path / "IMG_0001.jpg").write_bytes(source.read_bytes())
    # A fresh process, where no .heic file has registered the HEIF opener yet.
    code = ("import sys; from capdex.images import decode_image; "
            "print(decode_image(sys.argv[1], max_pixels=10**8).size)")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "IMG_0001.jpg")],
                         capture_output=True, text=True, cwd=Path(__file__).resolve().parents[2])
    assert out.returncode == 0 and out.stdout.strip() == "(48, 32)", out.stderr


def test_size_hint_shrinks_large_non_jpeg_images_but_never_below_the_hint(tmp_path):
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    big = Image.fromarray(rng.integers(0, 255, (1000, 1500, 3), dtype=np.uint8))
    big.save(tmp_path / "big.png")
    decoded = decode_image(tmp_path / "big.png", max_pixels=MAX_PIXELS, size_hint=224)
    assert decoded.size == (1500, 1000)  # the file's own size is still reported
    assert min(decoded.image.size) >= 224 and decoded.image.size == (375, 250)
    full = decode_image(tmp_path / "big.png", max_pixels=MAX_PIXELS)
    assert full.image.size == (1500, 1000)
    # A box-filtered mean is the same picture, just smaller.
    small = np.asarray(full.image.resize((375, 250), Image.Resampling.BOX), dtype=np.int16)
    assert np.abs(np.asarray(decoded.image, dtype=np.int16) - small).max() <= 1


def test_a_short_and_long_side_hint_decodes_4_3_photos_at_an_eighth(tmp_path):
    """(224, 384): the model's 224 on the short side, a 384 thumbnail box on the long side. A
    12-MP JPEG then decodes at 1/8 scale (500x375), not 1/4 as a 384-per-side hint would ask."""
    from PIL import Image

    Image.new("RGB", (4000, 3000), (90, 120, 30)).save(tmp_path / "wide.jpg")
    Image.new("RGB", (3000, 4000), (90, 120, 30)).save(tmp_path / "tall.jpg")
    Image.new("RGB", (1600, 1200), (90, 120, 30)).save(tmp_path / "wide.png")
    sizes = {name: decode_image(tmp_path / name, max_pixels=MAX_PIXELS,
                                size_hint=(224, 384)).image.size
             for name in ("wide.jpg", "tall.jpg", "wide.png")}
    assert sizes == {"wide.jpg": (500, 375), "tall.jpg": (375, 500), "wide.png": (400, 300)}
    square = decode_image(tmp_path / "wide.jpg", max_pixels=MAX_PIXELS, size_hint=384).image
    assert square.size == (1000, 750)  # an int keeps meaning "both sides"
