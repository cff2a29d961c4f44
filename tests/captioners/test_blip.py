"""The BLIP captioners (plain torch, tests/captioners/test_blip_torch.py holds the parity with
transformers), on a tiny model saved like Salesforce's."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from capdex.captioners import ModelNotInstalledError, create
from capdex.captioners.blip import cpu_has_native_bf16, resolve_dtype
from tests.captioners.conftest import make_settings


def _photos() -> list[Image.Image]:
    rng = np.random.default_rng(5)
    return [Image.fromarray(rng.integers(0, 256, (40, 30, 3), dtype=np.uint8)) for _ in range(3)]


def test_blip_captions_a_batch(tmp_path: Path, blip_dir: Path) -> None:
    captioner = create(
        "blip-base", make_settings(tmp_path, "blip-base", model_path=blip_dir, torch_dtype="fp32")
    )
    captions = captioner.caption_batch(_photos())
    assert len(captions) == 3 and all(isinstance(c, str) and c for c in captions)
    assert captioner.caption_batch([]) == []


def test_beams_and_lengths_reach_generate(tmp_path: Path, blip_dir: Path) -> None:
    settings = make_settings(
        tmp_path,
        "blip-base",
        model_path=blip_dir,
        caption_beams=1,
        caption_max_length=4,
        caption_min_length=4,
        torch_dtype="fp32",
    )
    captioner = create("blip-base", settings)
    captions = captioner.caption_batch(_photos())
    # BERT word pieces: four new tokens make at most four words, at least one.
    assert all(1 <= len(c.split()) <= 4 for c in captions)
    assert "beams=1;max=4;min=4" in captioner.version


def test_prompt_is_given_to_the_model_and_stripped(
    tmp_path: Path, blip_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = make_settings(
        tmp_path,
        "blip-base",
        model_path=blip_dir,
        caption_prompt="A photograph of",
        torch_dtype="fp32",
    )
    captioner = create("blip-base", settings)
    raw: list[str] = []
    with captioner._model.use() as blip:
        decode = blip.tokenizer.decode

        def spy(*args, **kwargs):
            texts = decode(*args, **kwargs)
            raw.extend(texts)
            return texts

        monkeypatch.setattr(blip.tokenizer, "decode", spy)
    captions = captioner.caption_batch(_photos())
    assert raw and all(text.startswith("a photograph of") for text in raw)
    assert all(not c.lower().startswith("a photograph of") for c in captions)
    assert "prompt='A photograph of'" in captioner.version


def test_bf16_runs_and_is_part_of_the_version(tmp_path: Path, blip_dir: Path) -> None:
    settings = make_settings(tmp_path, "blip-base", model_path=blip_dir, torch_dtype="bf16")
    captioner = create("blip-base", settings)
    assert len(captioner.caption_batch(_photos())) == 3
    assert ";bf16;" in captioner.version
    with captioner._model.use() as blip:
        floats = [w for w in blip.model.w.values() if w.is_floating_point()]
        assert floats and all(str(w.dtype) == "torch.bfloat16" for w in floats)


def test_auto_dtype_follows_the_cpu() -> None:
    assert resolve_dtype("auto") == ("bf16" if cpu_has_native_bf16() else "fp32")
    assert resolve_dtype("fp32") == "fp32"


def test_blip_large_reads_its_own_folder(tmp_path: Path, blip_dir: Path) -> None:
    settings = make_settings(tmp_path, "blip-large")
    captioner = create("blip-large", settings)
    with pytest.raises(ModelNotInstalledError) as error:
        captioner.caption(_photos()[0])
    assert "capdex models download blip-large" in str(error.value)
    assert str(settings.models_dir / "blip-large") in str(error.value)


def _model_card_captions(folder: Path, images: list[Image.Image], tokens: int) -> list[str]:
    """The model card's way: fp32, one image at a time, plain `generate`."""
    import torch
    from transformers import BlipForConditionalGeneration, BlipProcessor

    processor = BlipProcessor.from_pretrained(folder)
    model = BlipForConditionalGeneration.from_pretrained(folder).eval()
    out = []
    for image in images:
        inputs = processor(image, return_tensors="pt")
        with torch.no_grad():
            ids = model.generate(**inputs, max_new_tokens=tokens, min_new_tokens=tokens)
        out.append(" ".join(processor.decode(ids[0], skip_special_tokens=True).split()))
    return out


@pytest.mark.slow
def test_fp32_batches_give_the_model_cards_captions_and_bf16_mostly_agrees(
    tmp_path: Path, blip_dir: Path
) -> None:
    rng = np.random.default_rng(11)
    photos = [Image.fromarray(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)) for _ in range(8)]
    card = _model_card_captions(blip_dir, photos, 8)

    def ours(dtype: str) -> list[str]:
        settings = make_settings(tmp_path, "blip-base", model_path=blip_dir, torch_dtype=dtype,
                                 caption_beams=1, caption_min_length=8, caption_max_length=8)
        captioner = create("blip-base", settings)
        captioner.batch_size = 8
        return captioner.caption_batch(photos)

    assert ours("fp32") == [c.strip(" ,.:;") for c in card]  # batched fp32: token-identical
    words = [(a, b) for x, y in zip(ours("bf16"), card, strict=True)
             for a, b in zip(x.split(), y.split(), strict=False)]
    # bf16 rounds differently, so a near-tie can flip a word on random weights; most agree.
    assert sum(a == b for a, b in words) / len(words) >= 0.5
