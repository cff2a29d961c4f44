"""ViT-GPT2 through transformers, on a tiny VisionEncoderDecoder saved like nlpconnect's."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from capdex.captioners import ModelNotInstalledError, create
from capdex.captioners.transformers_base import cpu_has_native_bf16
from tests.captioners.conftest import make_settings
from tests.captioners.tiny_models import CAPTION_WORDS

COLOURS = [(220, 30, 30), (30, 40, 220), (5, 5, 5), (250, 250, 250), (30, 200, 40)]


def _photos() -> list[Image.Image]:
    return [Image.new("RGB", (48 + 8 * i, 40), colour) for i, colour in enumerate(COLOURS)]


def _captioner(tmp_path: Path, folder: Path, **values: object):
    values = {"torch_dtype": "fp32", "caption_max_length": 5, **values}
    return create("vit-gpt2", make_settings(tmp_path, "vit-gpt2", model_path=folder, **values))


def test_captions_a_batch_in_order(tmp_path: Path, vit_gpt2_dir: Path) -> None:
    assert not (vit_gpt2_dir / "generation_config.json").exists()  # nlpconnect's layout
    assert (vit_gpt2_dir / "vocab.json").is_file() and (vit_gpt2_dir / "merges.txt").is_file()
    captioner = _captioner(tmp_path, vit_gpt2_dir)
    photos = _photos()
    captions = captioner.caption_batch(photos)
    assert len(captions) == len(photos)
    assert all(c and set(c.split()) <= set(CAPTION_WORDS) for c in captions), captions
    assert len(set(captions)) > 1  # each photo gets its own caption...
    assert captions == [captioner.caption(photo) for photo in photos]  # ...in order
    assert captioner.caption_batch([]) == []
    with captioner._model.use() as loaded:
        assert type(loaded.model).__name__ == "VisionEncoderDecoderModel"
    captioner.close()
    assert not captioner._model.loaded


def test_beams_and_max_length_come_from_the_settings(
    tmp_path: Path, vit_gpt2_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    captioner = _captioner(tmp_path, vit_gpt2_dir, caption_beams=2, caption_max_length=3)
    seen: dict[str, Any] = {}
    with captioner._model.use() as loaded:
        generate = loaded.model.generate

        def spy(*args: Any, **kwargs: Any) -> Any:
            seen.update(kwargs)
            return generate(*args, **kwargs)

        monkeypatch.setattr(loaded.model, "generate", spy)
    captions = captioner.caption_batch(_photos())
    assert seen["num_beams"] == 2 and seen["max_new_tokens"] == 3
    assert all(1 <= len(c.split()) <= 3 for c in captions)
    assert captioner.version.endswith(";fp32;beams=2;max=3;min=0")
    default = create("vit-gpt2", make_settings(tmp_path, "vit-gpt2", model_path=vit_gpt2_dir))
    assert ";beams=4;max=20;" in default.version  # nlpconnect's beams, capdex's length


def test_bf16_runs_and_auto_follows_the_cpu(tmp_path: Path, vit_gpt2_dir: Path) -> None:
    captioner = _captioner(tmp_path, vit_gpt2_dir, torch_dtype="bf16")
    captions = captioner.caption_batch(_photos()[:2])
    assert all(set(c.split()) <= set(CAPTION_WORDS) for c in captions)
    with captioner._model.use() as loaded:
        assert str(next(loaded.model.parameters()).dtype) == "torch.bfloat16"
    assert ";bf16;" in captioner.version
    auto = _captioner(tmp_path, vit_gpt2_dir, torch_dtype="auto")
    assert auto.dtype == ("bf16" if cpu_has_native_bf16() else "fp32")
    captioner.close()


def test_version_names_the_weights(tmp_path: Path, vit_gpt2_dir: Path) -> None:
    assert _captioner(tmp_path, vit_gpt2_dir).version.startswith("vit-gpt2@local-")
    missing = create("vit-gpt2", make_settings(tmp_path, "vit-gpt2"))
    assert missing.version.startswith("vit-gpt2@not-installed;")
    with pytest.raises(ModelNotInstalledError, match="capdex models download vit-gpt2"):
        missing.caption(Image.new("RGB", (8, 8)))


def test_pytorch_bin_weights_are_accepted(tmp_path: Path, vit_gpt2_dir: Path) -> None:
    """Older snapshots hold pytorch_model.bin instead of model.safetensors."""
    import shutil

    import torch
    from safetensors.torch import load_file

    folder = tmp_path / "bin"
    shutil.copytree(vit_gpt2_dir, folder, ignore=shutil.ignore_patterns("*.safetensors"))
    torch.save(load_file(vit_gpt2_dir / "model.safetensors"), folder / "pytorch_model.bin")
    photos = _photos()[:2]
    assert _captioner(tmp_path, folder).caption_batch(photos) == _captioner(
        tmp_path, vit_gpt2_dir
    ).caption_batch(photos)
