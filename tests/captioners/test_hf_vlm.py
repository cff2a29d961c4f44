"""hf-vlm: any transformers image-text-to-text chat model, on a tiny LLaVA saved like
llava-hf/llava-1.5-7b-hf and loaded through AutoProcessor + AutoModelForImageTextToText."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from capdex.settings import Settings
from capdex.captioners import CaptionerError, ModelNotInstalledError, catalog, create
from tests.captioners import tiny_models
from tests.captioners.conftest import make_settings
from tests.captioners.tiny_models import CAPTION_WORDS

COLOURS = [(220, 30, 30), (30, 40, 220), (5, 5, 5), (250, 250, 250)]


def _photos() -> list[Image.Image]:
    return [Image.new("RGB", (40 + 8 * i, 36), colour) for i, colour in enumerate(COLOURS)]


def _settings(tmp_path: Path, folder: Path | None = None, **values: object) -> Settings:
    values = {"torch_dtype": "fp32", "llm_max_tokens": 8, **values}
    if folder is not None:
        values["model_path"] = folder
    return make_settings(tmp_path, "hf-vlm", **values)


def test_captions_a_batch_through_the_auto_classes(tmp_path: Path, llava_dir: Path) -> None:
    captioner = create("hf-vlm", _settings(tmp_path, llava_dir))
    photos = _photos()
    captions = captioner.caption_batch(photos)
    # Eight new tokens, one word each: nothing of the chat prompt ("USER: <image> ...") is left.
    assert all(len(c.split()) == 8 and set(c.split()) <= set(CAPTION_WORDS) for c in captions)
    assert len(set(captions)) > 1
    assert captions == [captioner.caption(photo) for photo in photos]
    with captioner._model.use() as loaded:
        assert type(loaded.model).__name__ == "LlavaForConditionalGeneration"
        assert type(loaded.processor).__name__ == "LlavaProcessor"
        assert loaded.tokenizer.padding_side == "left"
    captioner.close()
    assert not captioner._model.loaded


@pytest.mark.parametrize(
    ("fixture", "model_class", "bos"),
    [
        ("llava_dir", "LlavaForConditionalGeneration", "<s>"),
        ("qwen2_vl_dir", "Qwen2VLForConditionalGeneration", None),
        ("smolvlm_dir", "Idefics3ForConditionalGeneration", "<|im_start|>"),
    ],
)
def test_photos_of_any_shape_batch_like_one_by_one(
    tmp_path: Path,
    fixture: str,
    model_class: str,
    bos: str | None,
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Three architectures through the same code. Wide, square and tall photos take different
    numbers of image tokens in Qwen2-VL and SmolVLM, so a batch is padded: on the left, or the
    captions would differ from captioning each photo alone. BOS appears once, whether the
    tokenizer or the chat template writes it."""
    folder = request.getfixturevalue(fixture)
    captioner = create("hf-vlm", _settings(tmp_path, folder))
    photos = [
        Image.new("RGB", (300, 100), (200, 30, 30)),
        Image.new("RGB", (60, 60), (30, 40, 220)),
        Image.new("RGB", (100, 400), (30, 200, 40)),
    ]
    batches: list[Any] = []
    with captioner._model.use() as loaded:
        assert type(loaded.model).__name__ == model_class
        processor_class = type(loaded.processor)
        call = processor_class.__call__

        def spy(self: Any, *args: Any, **kwargs: Any) -> Any:
            batches.append(call(self, *args, **kwargs))
            return batches[-1]

        monkeypatch.setattr(processor_class, "__call__", spy)
    captions = captioner.caption_batch(photos)
    assert all(len(c.split()) == 8 and set(c.split()) <= set(CAPTION_WORDS) for c in captions)
    assert captions == [captioner.caption(photo) for photo in photos]
    padded = batches[0]["attention_mask"]
    lengths = padded.sum(dim=1).tolist()
    if fixture != "llava_dir":
        assert len(set(lengths)) > 1  # really padded...
    assert bool((padded[:, -1] == 1).all())  # ...on the left
    if bos is not None:
        tokenizer = loaded.tokenizer
        bos_id = tokenizer.convert_tokens_to_ids(bos)
        for row, length in zip(batches[0]["input_ids"].tolist(), lengths, strict=True):
            start = row[len(row) - length :]
            assert start[0] == bos_id and start[1] != bos_id
    captioner.close()


def test_the_instruction_goes_through_the_chat_template(
    tmp_path: Path, llava_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    captioner = create("hf-vlm", _settings(tmp_path, llava_dir, llm_prompt="Name the colour."))
    texts: list[str] = []
    with captioner._model.use() as loaded:
        processor_class = type(loaded.processor)
        call = processor_class.__call__

        def spy(self: Any, *args: Any, **kwargs: Any) -> Any:
            texts.extend(kwargs["text"])
            return call(self, *args, **kwargs)

        monkeypatch.setattr(processor_class, "__call__", spy)
    captioner.caption_batch(_photos()[:2])
    assert texts == ["USER: <image>\nName the colour. ASSISTANT:"] * 2
    other = create("hf-vlm", _settings(tmp_path, llava_dir))
    assert captioner.version != other.version  # the instruction changes the words


def test_chatty_answers_are_cleaned_up(
    tmp_path: Path, llava_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    captioner = create("hf-vlm", _settings(tmp_path, llava_dir))
    with captioner._model.use() as loaded:
        monkeypatch.setattr(
            loaded.tokenizer,
            "batch_decode",
            lambda tokens, **kwargs: ["This image shows a dog on a beach."] * len(tokens),
        )
    assert captioner.caption(_photos()[0]) == "a dog on a beach"


def test_bf16_and_large_photos(tmp_path: Path, llava_dir: Path) -> None:
    captioner = create("hf-vlm", _settings(tmp_path, llava_dir, torch_dtype="bf16"))
    captions = captioner.caption_batch([Image.new("RGB", (4000, 3000), (0, 90, 0)), _photos()[0]])
    assert all(set(c.split()) <= set(CAPTION_WORDS) for c in captions)
    with captioner._model.use() as loaded:
        assert str(loaded.model.dtype) == "torch.bfloat16"
    assert ";bf16;" in captioner.version
    captioner.close()


def test_version_names_the_model_weights_and_settings(tmp_path: Path, llava_dir: Path) -> None:
    version = create("hf-vlm", _settings(tmp_path, llava_dir)).version
    assert version.startswith("hf-vlm:llava@local-")
    assert ";fp32;" in version and ";max=8;" in version and ";clean=" in version


def test_a_local_folder_as_captioner_model(tmp_path: Path, llava_dir: Path) -> None:
    """CAPDEX_CAPTIONER_MODEL may name a folder instead of a hub id."""
    settings = _settings(tmp_path, captioner_model=str(llava_dir))
    assert catalog.model_dir("hf-vlm", settings) == llava_dir
    assert create("hf-vlm", settings).caption(_photos()[0])


def test_a_downloaded_hub_model_is_found_by_its_id(tmp_path: Path, llava_dir: Path) -> None:
    settings = _settings(tmp_path, captioner_model="llava-hf/llava-1.5-7b-hf")
    folder = settings.models_dir / "hf-vlm" / "llava-hf--llava-1.5-7b-hf"
    missing = create("hf-vlm", settings)
    with pytest.raises(ModelNotInstalledError) as error:
        missing.caption(_photos()[0])
    assert str(folder) in str(error.value)
    assert "capdex models download hf-vlm --model llava-hf/llava-1.5-7b-hf" in str(error.value)
    shutil.copytree(llava_dir, folder)
    (folder / catalog.MANIFEST).write_text(
        json.dumps({"hub_id": "llava-hf/llava-1.5-7b-hf", "revision": "abcdef0123456789"})
    )
    captioner = create("hf-vlm", settings)
    assert captioner.version.startswith("hf-vlm:llava-hf/llava-1.5-7b-hf@abcdef012345;")
    assert captioner.caption(_photos()[0])


def test_a_setting_that_is_neither_folder_nor_hub_id(tmp_path: Path) -> None:
    captioner = create("hf-vlm", _settings(tmp_path, captioner_model="../not a model"))
    with pytest.raises(CaptionerError, match="neither an existing folder nor a hub id"):
        captioner.caption(_photos()[0])


def test_a_model_without_chat_template_is_refused(tmp_path: Path) -> None:
    folder = tiny_models.build_llava(tmp_path / "no-template", chat_template=None)
    with pytest.raises(CaptionerError, match="no chat template"):
        create("hf-vlm", _settings(tmp_path, folder)).caption(_photos()[0])


# --- Models that ship their own code ------------------------------------------------------------

CUSTOM_CONFIG = '''
from transformers import LlavaConfig


class CapdexLlavaConfig(LlavaConfig):
    model_type = "capdex_llava"
'''

CUSTOM_MODEL = '''
from transformers import LlavaForConditionalGeneration

from .configuration_capdex import CapdexLlavaConfig


class CapdexLlava(LlavaForConditionalGeneration):
    config_class = CapdexLlavaConfig
    ran_remote_code = True
'''


@pytest.fixture
def remote_code_dir(tmp_path: Path, llava_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The tiny LLaVA as a hub repo with its own modelling code (config.json's auto_map)."""
    import sys

    from transformers import dynamic_module_utils

    # transformers copies the code into its modules cache and imports it from there: keep that
    # in the test's folder, not the user's ~/.cache.
    monkeypatch.setattr(dynamic_module_utils, "HF_MODULES_CACHE", str(tmp_path / "modules"))
    monkeypatch.setattr(sys, "path", list(sys.path))
    for name in [m for m in sys.modules if m.startswith("transformers_modules")]:
        monkeypatch.delitem(sys.modules, name)
    folder = tmp_path / "custom"
    shutil.copytree(llava_dir, folder)
    config = json.loads((folder / "config.json").read_text())
    config["model_type"] = "capdex_llava"
    config["auto_map"] = {
        "AutoConfig": "configuration_capdex.CapdexLlavaConfig",
        "AutoModelForImageTextToText": "modeling_capdex.CapdexLlava",
    }
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "configuration_capdex.py").write_text(CUSTOM_CONFIG)
    (folder / "modeling_capdex.py").write_text(CUSTOM_MODEL)
    return folder


def test_remote_code_needs_the_opt_in(tmp_path: Path, remote_code_dir: Path) -> None:
    with pytest.raises(CaptionerError, match="CAPDEX_HF_VLM_TRUST_REMOTE_CODE=1"):
        create("hf-vlm", _settings(tmp_path, remote_code_dir)).caption(_photos()[0])
    trusted = create("hf-vlm", _settings(tmp_path, remote_code_dir,
                                          captioner_options={"hf-vlm": {"trust_remote_code": True}}))
    assert trusted.caption(_photos()[0])
    with trusted._model.use() as loaded:
        assert getattr(type(loaded.model), "ran_remote_code", False)
    trusted.close()


@pytest.mark.parametrize(
    ("name", "fixture", "module", "extra"),
    [
        ("vit-gpt2", "vit_gpt2_dir", "transformers", "transformers"),
        ("blip2", "blip2_dir", "transformers", "transformers"),
        ("hf-vlm", "llava_dir", "transformers", "vlm"),
        ("hf-vlm", "llava_dir", "jinja2", "vlm"),
    ],
)
def test_a_missing_package_names_the_extra(
    tmp_path: Path,
    name: str,
    fixture: str,
    module: str,
    extra: str,
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import sys

    from capdex.captioners import MissingDependencyError

    folder = request.getfixturevalue(fixture)
    monkeypatch.setitem(sys.modules, module, None)  # makes `import module` fail
    captioner = create(name, make_settings(tmp_path, name, model_path=folder))
    with pytest.raises(MissingDependencyError, match=rf"pip install 'capdex\[{extra}\]'"):
        captioner.caption(_photos()[0])
