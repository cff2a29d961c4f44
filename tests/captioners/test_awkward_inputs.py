"""Every captioner takes whatever capdex.images.to_rgb makes of odd photos: greyscale, RGBA,
CMYK, palette, 16-bit, 1x1, 8x8, a thin panorama and a 12-megapixel image."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from capdex.captioners import ModelNotInstalledError, create
from tests.captioners.conftest import make_settings
from tests.captioners.fake_llm_server import FakeLLMServer, decode_images

FILE_MODELS = {
    "im2txt": "im2txt_dir",
    "im2txt-onnx": "im2txt_dir",
    "blip-base": "blip_dir",
    "blip-large": "blip_dir",
    "vit-gpt2": "vit_gpt2_dir",
    "blip2": "blip2_dir",
    "hf-vlm": "llava_dir",
    "moondream2": "moondream_dir",
}


@pytest.mark.parametrize("name", sorted(FILE_MODELS))
def test_model_captioners(
    name: str,
    tmp_path: Path,
    awkward_images: dict[str, Image.Image],
    request: pytest.FixtureRequest,
) -> None:
    folder = request.getfixturevalue(FILE_MODELS[name])
    settings = make_settings(
        tmp_path, name, model_path=folder, llm_max_tokens=8, torch_dtype="fp32",
        captioner_options={"moondream2": {"context": 512}},
        caption_max_length=8,
    )
    captioner = create(name, settings)
    images = list(awkward_images.values())
    assert all(image.mode == "RGB" for image in images)
    captions = captioner.caption_batch(images)
    assert len(captions) == len(images) and all(isinstance(c, str) for c in captions)
    captioner.close()


@pytest.mark.parametrize("name", ["ollama", "openai", "anthropic"])
def test_http_captioners(
    name: str,
    tmp_path: Path,
    awkward_images: dict[str, Image.Image],
    llm_server: FakeLLMServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test")
    captioner = create(
        name, make_settings(tmp_path, name, captioner_endpoint=llm_server.url)
    )
    captions = captioner.caption_batch(list(awkward_images.values()))
    assert captions == ["A dog sitting on the grass"] * len(awkward_images)
    sizes = [decode_images(r.body)[0].size for r in llm_server.requests]
    assert max(max(size) for size in sizes) == 1024  # the 4000x3000 photo, bounded
    assert (1, 1) in sizes
    captioner.close()


@pytest.mark.parametrize("name", sorted(FILE_MODELS))
def test_missing_model_is_actionable(name: str, tmp_path: Path) -> None:
    captioner = create(name, make_settings(tmp_path, name))
    with pytest.raises(ModelNotInstalledError) as error:
        captioner.caption(Image.new("RGB", (8, 8)))
    message = str(error.value)
    assert "is not installed" in message
    hint = "capdex models export im2txt" if name == "im2txt-onnx" else (
        f"capdex models download {name}"
    )
    assert hint in message
