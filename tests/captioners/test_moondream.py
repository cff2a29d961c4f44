"""Moondream 2 through llama-cpp-python, on tiny GGUF files llama.cpp really runs.

The text model is a one-layer llama; the projector is a one-block CLIP vision tower with the
same "mlp" projector type as Moondream 2's mmproj. Both are random, so the words are nonsense,
but every step is real: the MoondreamChatHandler, mtmd encoding the JPEG we send, generation.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from PIL import Image

from capdex.captioners import CaptionerError, ModelNotInstalledError, create
from capdex.captioners.lifecycle import active_large_model
from tests.captioners.conftest import make_settings


def _settings(tmp_path: Path, folder: Path, threads: int | None = None, **values: object):
    return make_settings(
        tmp_path, "moondream2", model_path=folder, llm_max_tokens=8,
        captioner_options={"moondream2": {"context": 512, "threads": threads}}, **values
    )


def test_moondream_captions_through_the_real_chat_handler(
    tmp_path: Path, moondream_dir: Path
) -> None:
    captioner = create("moondream2", _settings(tmp_path, moondream_dir, threads=1))
    images = [Image.new("RGB", (64, 48), (200, 20, 20)), Image.new("RGB", (30, 90), (0, 0, 255))]
    captions = captioner.caption_batch(images)
    assert len(captions) == 2 and all(isinstance(c, str) for c in captions)
    # Deterministic: temperature 0, so the same photo gets the same words.
    assert captioner.caption(images[0]) == captions[0]
    with captioner._model.use() as llm:
        assert llm.n_threads == 1
        assert type(llm.chat_handler).__name__ == "MoondreamChatHandler"
    captioner.close()
    assert not captioner._model.loaded


def test_idle_model_is_unloaded(tmp_path: Path, moondream_dir: Path) -> None:
    captioner = create("moondream2", _settings(tmp_path, moondream_dir, model_idle_ttl=0.2))
    captioner.caption(Image.new("RGB", (16, 16)))
    assert captioner._model.loaded and active_large_model() == "moondream2"
    deadline = time.monotonic() + 5
    while captioner._model.loaded and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not captioner._model.loaded
    captioner.caption(Image.new("RGB", (16, 16)))  # and comes back on demand
    assert captioner._model.loads == 2
    captioner.close()


def test_version_names_weights_prompt_and_length(tmp_path: Path, moondream_dir: Path) -> None:
    one = create("moondream2", _settings(tmp_path, moondream_dir)).version
    other = create(
        "moondream2", _settings(tmp_path, moondream_dir, llm_prompt="What is in this photo?")
    ).version
    assert one.startswith("moondream2@local-") and "max=8" in one and one != other


def test_missing_moondream_says_how_to_install(tmp_path: Path) -> None:
    captioner = create("moondream2", make_settings(tmp_path, "moondream2"))
    with pytest.raises(ModelNotInstalledError, match="capdex models download moondream2"):
        captioner.caption(Image.new("RGB", (8, 8)))


def test_corrupt_gguf_is_a_captioner_error(tmp_path: Path, moondream_dir: Path) -> None:
    folder = tmp_path / "broken"
    folder.mkdir()
    (folder / "moondream2-text-model-f16.gguf").write_bytes(b"GGUF but not really")
    (folder / "moondream2-mmproj-f16.gguf").write_bytes(
        (moondream_dir / "moondream2-mmproj-f16.gguf").read_bytes()
    )
    captioner = create("moondream2", _settings(tmp_path, folder))
    with pytest.raises(CaptionerError, match="cannot load"):
        captioner.caption(Image.new("RGB", (8, 8)))
