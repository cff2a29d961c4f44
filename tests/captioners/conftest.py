"""Fixtures for the captioner tests: tiny real models built once per session, a loopback LLM
server, and photos in awkward modes and sizes. Nothing here touches the network."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from capdex.images import to_rgb
from capdex.settings import Settings
from tests.captioners import tiny_models
from tests.captioners.fake_llm_server import FakeLLMServer


@pytest.fixture(autouse=True)
def _offline_and_isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    for var in list(os.environ):
        if var.startswith("CAPDEX_"):
            monkeypatch.delenv(var)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    yield


#: What `capdex models list` must show at least.
BUILTIN_MODELS = frozenset(
    {
        "tagger", "im2txt", "im2txt-onnx", "blip-base", "blip-large", "vit-gpt2", "blip2",
        "hf-vlm", "moondream2", "ollama", "openai", "anthropic",
    }
)


def make_settings(tmp_path: Path, captioner: str, **values: object) -> Settings:
    return Settings(data_dir=tmp_path / "data", captioner=captioner, **values)


@pytest.fixture(scope="session")
def model_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="session")
def im2txt_dir(model_root: Path) -> Path:
    """A tiny im2txt in LibrePhotos' layout, exported to ONNX next to it (as the CLI does)."""
    from capdex.captioners.im2txt.export import export_onnx

    folder = tiny_models.build_im2txt(model_root / "im2txt")
    export_onnx(folder)
    return folder


@pytest.fixture(scope="session")
def blip_dir(model_root: Path) -> Path:
    return tiny_models.build_blip(model_root / "blip")


@pytest.fixture(scope="session")
def vit_gpt2_dir(model_root: Path) -> Path:
    return tiny_models.build_vit_gpt2(model_root / "vit-gpt2")


@pytest.fixture(scope="session")
def blip2_dir(model_root: Path) -> Path:
    return tiny_models.build_blip2(model_root / "blip2")


@pytest.fixture(scope="session")
def llava_dir(model_root: Path) -> Path:
    return tiny_models.build_llava(model_root / "llava")


@pytest.fixture(scope="session")
def qwen2_vl_dir(model_root: Path) -> Path:
    return tiny_models.build_qwen2_vl(model_root / "qwen2-vl")


@pytest.fixture(scope="session")
def smolvlm_dir(model_root: Path) -> Path:
    return tiny_models.build_smolvlm(model_root / "smolvlm")


@pytest.fixture(scope="session")
def moondream_dir(model_root: Path) -> Path:
    return tiny_models.build_moondream(model_root / "moondream2")


@pytest.fixture(scope="session")
def _llm_server() -> Iterator[FakeLLMServer]:
    server = FakeLLMServer().start()
    yield server
    server.stop()


@pytest.fixture
def llm_server(_llm_server: FakeLLMServer) -> FakeLLMServer:
    _llm_server.reset()
    return _llm_server


def _gradient(width: int, height: int) -> Image.Image:
    x = np.linspace(0, 255, width, dtype=np.float32)[None, :, None]
    y = np.linspace(0, 255, height, dtype=np.float32)[:, None, None]
    rgb = np.concatenate(
        [
            np.broadcast_to(x, (height, width, 1)),
            np.broadcast_to(y, (height, width, 1)),
            np.full((height, width, 1), 128, np.float32),
        ],
        axis=2,
    )
    return Image.fromarray(rgb.astype(np.uint8), "RGB")


@pytest.fixture(scope="session")
def awkward_images() -> dict[str, Image.Image]:
    """Photos as capdex.images hands them to captioners: through to_rgb, whatever they were."""
    rgba = Image.new("RGBA", (64, 48), (255, 0, 0, 0))
    rgba.paste((0, 0, 255, 255), (16, 12, 48, 36))
    grey16 = Image.fromarray((np.arange(40 * 30, dtype=np.uint16) * 50).reshape(30, 40))
    originals = {
        "greyscale": _gradient(80, 60).convert("L"),
        "rgba": rgba,
        "cmyk": _gradient(70, 50).convert("CMYK"),
        "palette": _gradient(50, 50).convert("P"),
        "grey16": grey16,
        "1x1": Image.new("RGB", (1, 1), (10, 200, 30)),
        "8x8": _gradient(8, 8),
        "panorama": _gradient(600, 20),
        "4000x3000": _gradient(4000, 3000),
    }
    return {name: to_rgb(image) for name, image in originals.items()}
