"""BLIP-2 through transformers, on tiny models saved like Salesforce/blip2-opt-2.7b (today's
layout and the one from before image tokens were expanded in the processor)."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from capdex.captioners import CaptionerError, ModelNotInstalledError, create
from tests.captioners import tiny_models
from tests.captioners.conftest import make_settings
from tests.captioners.tiny_models import CAPTION_WORDS

COLOURS = [(220, 30, 30), (30, 40, 220), (5, 5, 5), (250, 250, 250)]


def _photos() -> list[Image.Image]:
    return [Image.new("RGB", (40, 30 + 10 * i), colour) for i, colour in enumerate(COLOURS)]


def _captioner(tmp_path: Path, folder: Path, **values: object):
    values = {"torch_dtype": "fp32", "caption_max_length": 4, **values}
    return create("blip2", make_settings(tmp_path, "blip2", model_path=folder, **values))


def test_captions_a_batch_in_order(tmp_path: Path, blip2_dir: Path) -> None:
    captioner = _captioner(tmp_path, blip2_dir)
    photos = _photos()
    captions = captioner.caption_batch(photos)
    # Four new tokens, one word each: the query-token placeholders and BOS are not in it.
    assert all(len(c.split()) == 4 and set(c.split()) <= set(CAPTION_WORDS) for c in captions)
    assert len(set(captions)) > 1
    assert captions == [captioner.caption(photo) for photo in photos]
    with captioner._model.use() as loaded:
        assert type(loaded.model).__name__ == "Blip2ForConditionalGeneration"
        assert loaded.processor.num_query_tokens == 4
    assert captioner.version.startswith("blip2@local-") and ";beams=3;max=4;min=0" in (
        captioner.version
    )
    captioner.close()


def test_the_prompt_is_given_and_only_the_continuation_kept(
    tmp_path: Path, blip2_dir: Path
) -> None:
    plain = _captioner(tmp_path, blip2_dir).caption_batch(_photos())
    prompted = _captioner(tmp_path, blip2_dir, caption_prompt="a photo of")
    captions = prompted.caption_batch(_photos())
    assert all(len(c.split()) == 4 for c in captions)  # the prompt's words are not repeated
    assert captions != plain  # the prompt reached the model
    assert "prompt='a photo of'" in prompted.version


def test_snapshot_from_before_image_token_expansion_loads(tmp_path: Path) -> None:
    folder = tiny_models.build_blip2(tmp_path / "legacy", legacy=True)
    captioner = _captioner(tmp_path, folder)
    captions = captioner.caption_batch(_photos()[:2])
    assert all(len(c.split()) == 4 and set(c.split()) <= set(CAPTION_WORDS) for c in captions)
    with captioner._model.use() as loaded:
        assert loaded.processor.num_query_tokens == 4
        assert loaded.model.config.image_token_index is not None
    captioner.close()


def test_missing_and_broken_models(tmp_path: Path) -> None:
    with pytest.raises(ModelNotInstalledError, match="capdex models download blip2"):
        create("blip2", make_settings(tmp_path, "blip2")).caption(Image.new("RGB", (8, 8)))
    folder = tmp_path / "broken"
    folder.mkdir()
    for name in ("config.json", "preprocessor_config.json", "tokenizer_config.json"):
        (folder / name).write_text("{not json")
    (folder / "model.safetensors").write_bytes(b"nope")
    with pytest.raises(CaptionerError, match="cannot load blip2"):
        _captioner(tmp_path, folder).caption(Image.new("RGB", (8, 8)))
