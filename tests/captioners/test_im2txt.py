"""im2txt: LibrePhotos' files load, both runtimes caption, and they agree token for token."""

from __future__ import annotations

import os
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from capdex.captioners import CaptionerError, ModelNotInstalledError, create
from capdex.captioners.im2txt import model as im2txt_model
from capdex.captioners.im2txt.captioner import OnnxRuntime, TorchRuntime, preprocess
from capdex.captioners.im2txt.decoding import beam_search
from capdex.captioners.im2txt.vocab import Vocabulary, load_vocab
from tests.captioners import tiny_models
from tests.captioners.conftest import make_settings


def _photos(count: int, seed: int = 1) -> list[Image.Image]:
    rng = np.random.default_rng(seed)
    photos = []
    for _ in range(count):
        h, w = rng.integers(16, 200, size=2)
        photos.append(Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)))
    return photos


# --- vocabulary --------------------------------------------------------------------------------


@pytest.mark.parametrize("module", ["build_vocab", "__main__", "api.im2txt.build_vocab"])
def test_vocab_pickled_by_librephotos_loads_as_ours(tmp_path: Path, module: str) -> None:
    path = tmp_path / "vocab.pkl"
    tiny_models.write_librephotos_vocab(path, ["a", "dog"], module=module)
    vocab = load_vocab(path)
    assert isinstance(vocab, Vocabulary)
    assert vocab.idx2word[2] == "<end>" and vocab.word2idx["dog"] == 5 and len(vocab) == 6


def test_vocab_loader_refuses_anything_but_a_vocabulary(tmp_path: Path) -> None:
    class Exploit:
        def __reduce__(self):
            return (os.system, ("echo pwned > " + str(tmp_path / "pwned"),))

    path = tmp_path / "vocab.pkl"
    path.write_bytes(pickle.dumps(Exploit()))
    with pytest.raises(CaptionerError, match="refusing to load"):
        load_vocab(path)
    assert not (tmp_path / "pwned").exists()


def test_vocab_without_end_token_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "vocab.pkl"
    vocab = Vocabulary()
    vocab.add_word("hello")
    path.write_bytes(pickle.dumps(vocab))
    with pytest.raises(CaptionerError, match="<end>"):
        load_vocab(path)


# --- architecture from the state dict ----------------------------------------------------------


def test_real_resnet152_layout_is_recognised() -> None:
    """LibrePhotos' encoder keys (resnet.N... from nn.Sequential(resnet152 children)) give
    torchvision's resnet152, checked on the meta device so no weights are made."""
    import torch
    from torchvision.models import resnet152

    with torch.device("meta"):
        net = resnet152(weights=None)
    trunk = torch.nn.Sequential(*list(net.children())[:-1])
    keys = {f"resnet.{k}": v for k, v in trunk.state_dict().items()}
    assert im2txt_model._stage_depths(keys) == [3, 8, 36, 3]
    assert "resnet.4.0.conv3.weight" in keys  # Bottleneck blocks


def test_old_style_checkpoints_load(tmp_path: Path, im2txt_dir: Path) -> None:
    """LibrePhotos' files date from 2018: PyTorch's legacy (pre-zip) format, possibly without
    batch-norm step counters (added in PyTorch 0.4.1)."""
    import torch

    state = torch.load(im2txt_dir / "models" / "encoder-10-1000.ckpt", weights_only=True)
    state = {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}
    legacy = tmp_path / "encoder-10-1000.ckpt"
    torch.save(state, legacy, _use_new_zipfile_serialization=False)
    encoder = im2txt_model.build_encoder(im2txt_model.read_state_dict(legacy))
    reference = im2txt_model.build_encoder(
        im2txt_model.read_state_dict(im2txt_dir / "models" / "encoder-10-1000.ckpt")
    )
    pixels = torch.from_numpy(preprocess(_photos(2)))
    with torch.inference_mode():
        assert torch.equal(encoder(pixels), reference(pixels))


def test_mismatched_checkpoint_says_so(tmp_path: Path, im2txt_dir: Path) -> None:
    import torch

    state = torch.load(im2txt_dir / "models" / "decoder-10-1000.ckpt", weights_only=True)
    state["lstm.weight_ih_l0"] = torch.zeros(3, 3)
    bad = tmp_path / "decoder.ckpt"
    torch.save(state, bad)
    with pytest.raises(CaptionerError, match="does not match LibrePhotos' layout"):
        im2txt_model.build_decoder(im2txt_model.read_state_dict(bad))


def test_garbage_checkpoint_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "encoder-10-1000.ckpt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(CaptionerError, match="cannot read the im2txt checkpoint"):
        im2txt_model.read_state_dict(bad)


# --- decoding ----------------------------------------------------------------------------------


def test_beam_search_finds_what_greedy_misses() -> None:
    """Token 3 looks best first (-0.4 vs -0.9) but every continuation of it is poor."""
    end = 0
    first = np.log(np.array([[1e-9, 0.0, 0.4, 0.6]], dtype=np.float32) + 1e-12)

    def step(tokens, state):
        rows = []
        for token in tokens:
            if token == 3:  # after 3: end, or one of two mediocre words
                rows.append([0.2, 1e-9, 0.4, 0.4])
            elif token == 2:  # after 2: end almost surely
                rows.append([0.95, 1e-9, 0.025, 0.025])
            else:
                rows.append([1.0, 1e-9, 1e-9, 1e-9])
        return np.log(np.array(rows, dtype=np.float32)), state

    state = (np.zeros((1, 1, 1), np.float32),)
    assert beam_search(first, state, step, end_id=end, beams=1, max_length=5) == [[3, 2]]
    assert beam_search(first, state, step, end_id=end, beams=2, max_length=5) == [[2]]


def test_min_length_holds_back_the_end_token() -> None:
    first = np.log(np.array([[0.9, 0.1]], dtype=np.float32))

    def step(tokens, state):
        return np.log(np.tile(np.array([[0.9, 0.1]], np.float32), (len(tokens), 1))), state

    state = (np.zeros((1, 1, 1), np.float32),)
    assert beam_search(first, state, step, end_id=0, max_length=10) == [[]]
    assert beam_search(first, state, step, end_id=0, max_length=10, min_length=3) == [[1, 1, 1]]


# --- captioning --------------------------------------------------------------------------------


def test_im2txt_captions_a_batch_like_single_images(tmp_path: Path, im2txt_dir: Path) -> None:
    captioner = create("im2txt", make_settings(tmp_path, "im2txt", model_path=im2txt_dir))
    photos = _photos(6)
    batch = captioner.caption_batch(photos)
    assert batch == [captioner.caption(photo) for photo in photos]
    assert all(isinstance(c, str) and c for c in batch)
    assert len(set(batch)) > 1, "the tiny model should tell these photos apart"
    assert not any(tok in c for c in batch for tok in ("<start>", "<end>", "<pad>"))


def test_beam_search_batched_matches_one_by_one(tmp_path: Path, im2txt_dir: Path) -> None:
    settings = make_settings(tmp_path, "im2txt", model_path=im2txt_dir, caption_beams=3)
    captioner = create("im2txt", settings)
    photos = _photos(5, seed=7)
    assert captioner.caption_batch(photos) == [captioner.caption(p) for p in photos]


@pytest.mark.parametrize("beams", [1, 3])
def test_onnx_gives_the_same_tokens_as_pytorch(im2txt_dir: Path, beams: int) -> None:
    torch_rt, onnx_rt = TorchRuntime(im2txt_dir), OnnxRuntime(im2txt_dir)
    pixels = preprocess(_photos(24, seed=3))
    end = torch_rt.vocab.id("<end>")
    results = []
    for runtime in (torch_rt, onnx_rt):
        first, state = runtime.start(pixels)
        results.append(
            beam_search(first, state, runtime.step, end_id=end, beams=beams, max_length=20)
        )
    assert results[0] == results[1]
    assert len({tuple(r) for r in results[0]}) > 1


def test_onnx_captioner_matches_torch_captioner(tmp_path: Path, im2txt_dir: Path) -> None:
    photos = _photos(4, seed=11)
    torch_captions = create(
        "im2txt", make_settings(tmp_path, "im2txt", model_path=im2txt_dir)
    ).caption_batch(photos)
    onnx_captions = create(
        "im2txt-onnx", make_settings(tmp_path, "im2txt-onnx", model_path=im2txt_dir)
    ).caption_batch(photos)
    assert onnx_captions == torch_captions


def test_installed_in_the_data_dir_without_model_path(tmp_path: Path, im2txt_dir: Path) -> None:
    settings = make_settings(tmp_path, "im2txt")
    shutil.copytree(im2txt_dir, settings.models_dir / "im2txt")
    assert create("im2txt", settings).caption(_photos(1)[0])
    assert create("im2txt-onnx", settings).caption(_photos(1)[0])


def test_missing_model_says_how_to_install(tmp_path: Path) -> None:
    captioner = create("im2txt", make_settings(tmp_path, "im2txt"))
    with pytest.raises(ModelNotInstalledError) as error:
        captioner.caption(_photos(1)[0])
    message = str(error.value)
    assert "capdex models download im2txt" in message and "--model-path" in message


def test_onnx_not_exported_says_to_export(tmp_path: Path, im2txt_dir: Path) -> None:
    folder = tmp_path / "im2txt"
    shutil.copytree(im2txt_dir, folder, ignore=shutil.ignore_patterns("onnx"))
    captioner = create("im2txt-onnx", make_settings(tmp_path, "im2txt-onnx", model_path=folder))
    with pytest.raises(ModelNotInstalledError, match="capdex models export im2txt"):
        captioner.caption(_photos(1)[0])


def test_version_names_weights_and_decoding(tmp_path: Path, im2txt_dir: Path) -> None:
    greedy = create("im2txt", make_settings(tmp_path, "im2txt", model_path=im2txt_dir))
    beam = create(
        "im2txt", make_settings(tmp_path, "im2txt", model_path=im2txt_dir, caption_beams=3)
    )
    assert greedy.version.startswith("im2txt@local-") and "beams=1" in greedy.version
    assert beam.version != greedy.version
    other = tiny_models.build_im2txt(tmp_path / "other", hidden=32)
    assert create("im2txt", make_settings(tmp_path, "im2txt", model_path=other)).version.split(
        ";"
    )[0] != greedy.version.split(";")[0]


def test_decoder_and_vocab_that_do_not_belong_together(tmp_path: Path, im2txt_dir: Path) -> None:
    folder = tmp_path / "mixed"
    shutil.copytree(im2txt_dir, folder)
    tiny_models.write_librephotos_vocab(folder / "data" / "vocab.pkl", ["just", "three", "words"])
    captioner = create("im2txt", make_settings(tmp_path, "im2txt", model_path=folder))
    with pytest.raises(CaptionerError, match="do not belong together"):
        captioner.caption(_photos(1)[0])


@pytest.mark.slow
def test_full_size_resnet152_checkpoint_loads_and_captions(tmp_path: Path) -> None:
    """The real architecture end to end: ResNet-152 + embed 256 + hidden 512, as LibrePhotos'
    files are shaped (random weights: the real ones cannot be fetched here)."""
    folder = tiny_models.build_im2txt(
        tmp_path / "im2txt", depths=(3, 8, 36, 3), bottleneck=True, embed=256, hidden=512
    )
    runtime = TorchRuntime(folder)
    assert sum(1 for _ in runtime.encoder.resnet.modules()) > 400
    captioner = create("im2txt", make_settings(tmp_path, "im2txt", model_path=folder))
    captions = captioner.caption_batch(_photos(2))
    assert len(captions) == 2
    captioner.close()
