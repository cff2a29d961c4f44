"""capdex's plain-torch BLIP against transformers' own, on tiny models saved like Salesforce's:
the same pixels, the same image embeddings and the same caption tokens, bit for bit."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from capdex.captioners import CaptionerError, MissingDependencyError, create
from tests.captioners.conftest import make_settings

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

EOS = 102  # BERT's [SEP], BLIP's end of caption


@pytest.fixture(scope="module")
def lively_blip(blip_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny BLIP with a vision tower and cross-attention that tell photos apart (as saved,
    they are initialised near zero and every photo gets the same caption), and an end-of-caption
    token likely enough that some captions stop early and others run on."""
    folder = tmp_path_factory.mktemp("lively-blip")
    for file in blip_dir.iterdir():
        shutil.copy(file, folder / file.name)
    model = transformers.BlipForConditionalGeneration.from_pretrained(blip_dir).eval()
    generator = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for name, param in model.named_parameters():
            looks = "vision_model" in name or "crossattention" in name
            if looks and "LayerNorm" not in name and "layer_norm" not in name:
                param.copy_(torch.randn(param.shape, generator=generator) * 0.3)
        model.text_decoder.cls.predictions.bias[EOS] += 0.5
    model.save_pretrained(folder)
    return folder


def _photos(n: int = 6, seed: int = 5) -> list[Image.Image]:
    rng = np.random.default_rng(seed)
    shapes = [(40, 30), (480, 640), (32, 32), (40, 30), (300, 200), (17, 90)]
    photos = []
    for i in range(n):
        h, w = shapes[i % len(shapes)]
        photos.append(Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)))
    photos[-1] = photos[-1].convert("L")  # a grey photo: converted to RGB as transformers does
    return photos


def _hf(folder: Path, dtype: object, *, fused: bool = True) -> tuple[object, object]:
    """transformers' processor and model; `fused`: with the vision self-attention through
    torch's `scaled_dot_product_attention`, as capdex ran transformers' BLIP before blip_torch
    (so captions made then are the reference, bit for bit)."""
    processor = transformers.BlipProcessor.from_pretrained(folder)
    model = transformers.BlipForConditionalGeneration.from_pretrained(folder, dtype=dtype).eval()
    if fused:
        for layer in model.vision_model.encoder.layers:
            layer.self_attn = _FusedAttention(layer.self_attn)
    return processor, model


class _FusedAttention(torch.nn.Module):
    """transformers' BlipAttention with softmax(QK^T)V in one fused call."""

    def __init__(self, eager: torch.nn.Module) -> None:
        super().__init__()
        self.qkv, self.projection, self.num_heads = eager.qkv, eager.projection, eager.num_heads

    def forward(self, hidden_states: torch.Tensor, **_: object) -> tuple[torch.Tensor, None]:
        batch, tokens, dim = hidden_states.shape
        q, k, v = (self.qkv(hidden_states)
                   .reshape(batch, tokens, 3, self.num_heads, dim // self.num_heads)
                   .permute(2, 0, 3, 1, 4))
        context = torch.nn.functional.scaled_dot_product_attention(q, k, v)
        return self.projection(context.transpose(1, 2).reshape(batch, tokens, dim)), None


@pytest.mark.parametrize("dtype", ["fp32", "bf16"])
def test_pixels_and_image_embeddings_are_transformers_own(lively_blip: Path, dtype: str) -> None:
    from capdex.captioners.blip_torch import Blip

    torch_dtype = torch.bfloat16 if dtype == "bf16" else torch.float32
    processor, model = _hf(lively_blip, torch_dtype)
    ours = Blip(lively_blip, torch_dtype)
    photos = _photos()
    expected = processor(images=photos, return_tensors="pt")["pixel_values"]
    pixels = ours.images.pixels(photos)
    assert torch.equal(pixels, expected)
    with torch.inference_mode():
        want = model.vision_model(pixel_values=expected.to(torch_dtype)).last_hidden_state
        got = ours.see(pixels)
    assert torch.equal(got, want)
    assert len({tuple(row.flatten()[:8].tolist()) for row in got}) > 1  # photos differ


def test_fused_vision_attention_is_transformers_eager_arithmetic(lively_blip: Path) -> None:
    from capdex.captioners.blip_torch import Blip

    _, eager = _hf(lively_blip, torch.float32, fused=False)
    pixels = torch.randn(2, 3, 32, 32)
    with torch.inference_mode():
        want = eager.vision_model(pixel_values=pixels).last_hidden_state
        got = Blip(lively_blip, torch.float32).see(pixels)
    assert torch.allclose(got, want, atol=1e-5), (got - want).abs().max()


CASES = [  # beams, min new, max new, prompt
    (1, 0, 12, ""),
    (3, 5, 12, ""),
    (3, 0, 8, "a photo of"),
    (1, 3, 6, "a photo of"),
    (4, 0, 10, ""),
]


@pytest.mark.parametrize("dtype", ["fp32", "bf16"])
@pytest.mark.parametrize(("beams", "least", "most", "prompt"), CASES)
def test_captions_are_transformers_generate_token_for_token(
    tmp_path: Path, lively_blip: Path, dtype: str, beams: int, least: int, most: int, prompt: str
) -> None:
    torch_dtype = torch.bfloat16 if dtype == "bf16" else torch.float32
    processor, model = _hf(lively_blip, torch_dtype)
    photos = _photos()
    inputs = processor(images=photos, text=[prompt] * len(photos) if prompt else None,
                       return_tensors="pt")
    inputs["pixel_values"] = inputs["pixel_values"].to(torch_dtype)
    with torch.inference_mode():
        ids = model.generate(**inputs, num_beams=beams, min_new_tokens=least, max_new_tokens=most,
                             do_sample=False)
    expected = processor.batch_decode(ids, skip_special_tokens=True)

    settings = make_settings(tmp_path, "blip-base", model_path=lively_blip, torch_dtype=dtype,
                             caption_beams=beams, caption_min_length=least,
                             caption_max_length=most, caption_prompt=prompt or None)
    captioner = create("blip-base", settings)
    from capdex.captioners.blip import strip_prompt

    assert captioner.caption_batch(photos) == [strip_prompt(t, prompt) for t in expected]
    if beams == 1 and not prompt:  # the model really ends some captions early, not all
        lengths = {int((row != 0).sum()) for row in ids}
        assert len(lengths) > 1 and len({tuple(row.tolist()) for row in ids}) > 1, lengths


def test_decoding_words_is_transformers_own(lively_blip: Path) -> None:
    from capdex.captioners.blip_torch import BlipConfig, Tokens

    processor = transformers.BlipProcessor.from_pretrained(lively_blip)
    ours = Tokens(lively_blip, BlipConfig.read(lively_blip))
    ids = torch.tensor([
        processor.tokenizer.convert_tokens_to_ids(words)
        for words in (["[DEC]", "a", "dog", "'", "s", "ball", ",", "isn", "'", "t", "it", "?",
                       "[SEP]", "[PAD]"],
                      ["[DEC]", "play", "##ing", "in", "the", "snow", ".", "[SEP]", "[PAD]",
                       "[PAD]", "[PAD]", "[PAD]", "[PAD]", "[PAD]"])
    ])
    assert ours.decode(ids) == processor.batch_decode(ids, skip_special_tokens=True)
    for prompt in ("a photography of", "A Picture, of"):
        expected = processor.tokenizer(prompt, return_tensors="pt")["input_ids"][:, :-1].clone()
        expected[:, 0] = BlipConfig.read(lively_blip).bos_token_id
        assert torch.equal(ours.prompt(prompt, 1), expected)


def test_blip_captions_without_importing_transformers(lively_blip: Path, tmp_path: Path) -> None:
    """The point of blip_torch (issue 17): BLIP starts without transformers' ~3 s import."""
    script = f"""
import sys
from PIL import Image
from capdex.captioners import create
from capdex.settings import Settings
settings = Settings(data_dir={str(tmp_path / 'data')!r}, captioner="blip-base",
                    model_path={str(lively_blip)!r}, caption_beams=3)
captions = create("blip-base", settings).caption_batch([Image.new("RGB", (40, 30), "red")])
assert captions and captions[0], captions
print(sorted(m for m in sys.modules if m.split(".")[0] in ("transformers", "torchvision")))
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         check=True, cwd=Path(__file__).resolve().parents[2])
    assert out.stdout.strip() == "[]", out.stdout


def _broken_copy(source: Path, folder: Path) -> Path:
    folder.mkdir()
    for file in source.iterdir():
        shutil.copy(file, folder / file.name)
    return folder


def test_a_folder_without_tokenizer_json_says_so(blip_dir: Path, tmp_path: Path) -> None:
    folder = _broken_copy(blip_dir, tmp_path / "blip")
    (folder / "tokenizer.json").unlink()
    captioner = create("blip-base", make_settings(tmp_path, "blip-base", model_path=folder))
    with pytest.raises(CaptionerError, match="tokenizer.json"):
        captioner.caption_batch(_photos(1))


def test_a_checkpoint_of_another_model_is_refused_by_name(blip_dir: Path, tmp_path: Path) -> None:
    from safetensors.torch import load_file, save_file

    folder = _broken_copy(blip_dir, tmp_path / "blip")
    weights = load_file(folder / "model.safetensors")
    save_file({k: v for k, v in weights.items() if not k.startswith("text_decoder.")},
              folder / "model.safetensors")
    captioner = create("blip-base", make_settings(tmp_path, "blip-base", model_path=folder))
    with pytest.raises(CaptionerError, match="not a BLIP captioning checkpoint"):
        captioner.caption_batch(_photos(1))


def test_an_activation_blip_does_not_use_is_refused(blip_dir: Path, tmp_path: Path) -> None:
    folder = _broken_copy(blip_dir, tmp_path / "blip")
    config = json.loads((folder / "config.json").read_text())
    config["text_config"]["hidden_act"] = "relu"
    (folder / "config.json").write_text(json.dumps(config))
    captioner = create("blip-base", make_settings(tmp_path, "blip-base", model_path=folder))
    with pytest.raises(CaptionerError, match="relu"):
        captioner.caption_batch(_photos(1))


def test_missing_torch_names_the_extra(
    tmp_path: Path, blip_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "torch", None)  # makes `import torch` fail
    captioner = create("blip-base", make_settings(tmp_path, "blip-base", model_path=blip_dir))
    with pytest.raises(MissingDependencyError, match=r"pip install 'capdex\[blip\]'"):
        captioner.caption(_photos(1)[0])


@pytest.fixture(scope="module")
def wider_blip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A BLIP 128 wide over 64 patches: big enough that torch's matmul kernels depend on memory
    layout (at 32 wide they do not), so logits are only equal if the layouts are transformers'."""
    from tests.captioners.tiny_models import minilm_folder

    folder = tmp_path_factory.mktemp("wider-blip")
    tokenizer = transformers.BertTokenizer.from_pretrained(minilm_folder())
    tokenizer.add_special_tokens({"bos_token": "[DEC]", "additional_special_tokens": ["[ENC]"]})
    torch.manual_seed(0)
    size = {"hidden_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
            "intermediate_size": 256}
    config = transformers.BlipConfig(
        text_config=dict(size, vocab_size=len(tokenizer), encoder_hidden_size=128,
                         bos_token_id=tokenizer.bos_token_id, sep_token_id=EOS,
                         eos_token_id=EOS, pad_token_id=0),
        vision_config=dict(size, image_size=128, patch_size=16), projection_dim=128)
    model = transformers.BlipForConditionalGeneration(config).eval()
    generator = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if ("vision_model" in name or "crossattention" in name) and param.dim() > 1:
                param.copy_(torch.randn(param.shape, generator=generator) * 0.3)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    transformers.BlipImageProcessor(size={"height": 128, "width": 128}).save_pretrained(folder)
    return folder


def test_every_step_gives_transformers_cached_logits_bit_for_bit(wider_blip: Path) -> None:
    """transformers' generate runs the decoder with its cache, which stores keys and values
    contiguously; at this width a different layout changes fp32 logits in the last bits, and
    on real BLIP that flipped words (found on a real-size model with random weights)."""
    from capdex.captioners.blip_torch import Blip, Tokens

    processor, model = _hf(wider_blip, torch.float32)
    photos = _photos(4)
    pixels = processor(images=photos, return_tensors="pt")["pixel_values"]
    with torch.inference_mode():
        out = model.generate(pixel_values=pixels, num_beams=1, max_new_tokens=10, do_sample=False,
                             min_new_tokens=10, output_logits=True, return_dict_in_generate=True)
        ours = Blip(wider_blip, torch.float32)
        step = ours.decoder(ours.see(ours.images.pixels(photos)))
        logits = step(Tokens(wider_blip, ours.config).prompt("", len(photos)), None)
        for i, expected in enumerate(out.logits):
            assert torch.equal(logits, expected), (i, (logits - expected).abs().max())
            logits = step(out.sequences[:, i + 1 : i + 2], None)


def test_bf16_weights_are_cast_once_and_then_read_from_the_user_cache(
    lively_blip: Path, tmp_path: Path
) -> None:
    from capdex.captioners.blip_torch import Blip

    folder = _broken_copy(lively_blip, tmp_path / "blip")
    cache = tmp_path / "cache"
    first = Blip(folder, torch.bfloat16, cache=cache)
    (cast,) = cache.glob("*.safetensors")
    again = Blip(folder, torch.bfloat16, cache=cache)
    assert list(cache.glob("*.safetensors")) == [cast]
    assert first.w.keys() == again.w.keys()
    assert all(torch.equal(first.w[k], again.w[k]) for k in first.w)
    assert all(v.dtype == torch.bfloat16 for v in again.w.values() if v.is_floating_point())

    # New weights in the folder: a new cast, and the stale one is gone.
    from safetensors.torch import load_file, save_file

    weights = load_file(folder / "model.safetensors")
    key = "vision_model.post_layernorm.bias"
    weights[key] = weights[key] + 1
    save_file(weights, folder / "model.safetensors")
    changed = Blip(folder, torch.bfloat16, cache=cache)
    assert torch.equal(changed.w[key], weights[key].to(torch.bfloat16))
    assert [p.name for p in cache.glob("*.safetensors")] != [cast.name]
    assert len(list(cache.glob("*.safetensors"))) == 1


def test_a_torn_cache_file_is_cast_again(
    lively_blip: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from capdex.captioners.blip_torch import Blip

    cache = tmp_path / "cache"
    expected = Blip(lively_blip, torch.bfloat16, cache=cache).w
    (cast,) = cache.glob("*.safetensors")
    cast.write_bytes(cast.read_bytes()[:1000])
    got = Blip(lively_blip, torch.bfloat16, cache=cache).w
    assert all(torch.equal(expected[k], got[k]) for k in expected)
    assert "ignoring the cached BLIP weights" in caplog.text
    assert cast.stat().st_size > 1000  # written again


def test_weights_already_in_the_dtype_are_not_copied_to_the_cache(
    lively_blip: Path, tmp_path: Path
) -> None:
    from capdex.captioners.blip_torch import Blip

    Blip(lively_blip, torch.float32, cache=tmp_path / "cache")  # the folder holds fp32
    assert not list((tmp_path / "cache").glob("*"))
