"""BLIP captioning (ViT encoder + BERT decoder) in plain torch, read from a Salesforce-style folder.

Why not transformers' `BlipForConditionalGeneration`: importing its modeling code alone costs
~3 s, half of BLIP's start-up (issue 17). This module does the same arithmetic, op for op and in
the same order, on the same safetensors weights, with no transformers import: captions are
token-identical to transformers' in fp32 and in bf16 (tests/captioners/test_blip_torch.py).
Preprocessing is transformers' default for BLIP (torchvision backend: uint8 bicubic antialiased
resize, then normalise); the tokenizer is the folder's `tokenizer.json` through `tokenizers`.

Imported only when a BLIP model loads: it imports torch at the top.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch.nn import functional as F

from capdex.captioners.lifecycle import require

if TYPE_CHECKING:
    from collections.abc import Sequence

    from PIL import Image

Tensor = torch.Tensor
log = logging.getLogger(__name__)
#: Changes when the cached cast weights would be written differently.
CACHE_FORMAT = 1

#: What transformers' `BlipConfig` defaults to, for fields an older config.json leaves out.
VISION_DEFAULTS = {"num_attention_heads": 12, "layer_norm_eps": 1e-5, "patch_size": 16,
                   "image_size": 384, "hidden_act": "gelu", "num_hidden_layers": 12}
TEXT_DEFAULTS = {"num_attention_heads": 8, "layer_norm_eps": 1e-12, "hidden_act": "gelu",
                 "num_hidden_layers": 12, "bos_token_id": 30522, "sep_token_id": 102,
                 "pad_token_id": 0}
OPENAI_CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


class BlipFolderError(ValueError):
    """The folder is not a BLIP captioning model this module can read (the message says why)."""


@dataclass(frozen=True)
class BlipConfig:
    """The few numbers the arithmetic needs; shapes come from the weights themselves."""

    vision_layers: int
    vision_heads: int
    vision_eps: float
    patch_size: int
    text_layers: int
    text_heads: int
    text_eps: float
    bos_token_id: int
    sep_token_id: int
    pad_token_id: int

    @classmethod
    def read(cls, folder: Path) -> BlipConfig:
        try:
            raw = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise BlipFolderError(f"cannot read {folder / 'config.json'}: {exc}") from exc
        vision = {**VISION_DEFAULTS, **(raw.get("vision_config") or {})}
        text = {**TEXT_DEFAULTS, **(raw.get("text_config") or {})}
        for part, act in (("vision", vision["hidden_act"]), ("text", text["hidden_act"])):
            if act != "gelu":
                raise BlipFolderError(f"{folder}: {part} activation {act!r} is not BLIP's gelu")
        return cls(
            vision_layers=int(vision["num_hidden_layers"]),
            vision_heads=int(vision["num_attention_heads"]),
            vision_eps=float(vision["layer_norm_eps"]),
            patch_size=int(vision["patch_size"]),
            text_layers=int(text["num_hidden_layers"]),
            text_heads=int(text["num_attention_heads"]),
            text_eps=float(text["layer_norm_eps"]),
            bos_token_id=int(text["bos_token_id"]),
            sep_token_id=int(text["sep_token_id"]),
            pad_token_id=int(text["pad_token_id"]),
        )


@dataclass(frozen=True)
class ImageSettings:
    """`preprocessor_config.json`: the square size and the normalisation."""

    size: tuple[int, int]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    rescale_factor: float

    @classmethod
    def read(cls, folder: Path) -> ImageSettings:
        path = folder / "preprocessor_config.json"
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise BlipFolderError(f"cannot read {path}: {exc}") from exc
        size = raw.get("size", 384)
        if isinstance(size, dict):
            size = (int(size["height"]), int(size["width"]))
        else:  # older folders say `"size": 384`
            size = (int(size), int(size))
        if raw.get("resample", 3) != 3 or raw.get("do_center_crop") or raw.get("do_pad"):
            raise BlipFolderError(f"{path}: only BLIP's bicubic square resize is supported")
        return cls(size, tuple(raw.get("image_mean", OPENAI_CLIP_MEAN)),
                   tuple(raw.get("image_std", OPENAI_CLIP_STD)),
                   float(raw.get("rescale_factor", 1 / 255)))

    def pixels(self, images: Sequence[Image.Image]) -> Tensor:
        """(N, 3, H, W) float32, as transformers' BLIP image processor makes them: RGB, a
        bicubic antialiased resize of the uint8 image, then (x - mean/scale) / (std/scale)."""
        batch = []
        for image in images:
            array = np.array(image.convert("RGB"))  # writable, as torch.from_numpy wants
            chw = torch.from_numpy(array).permute(2, 0, 1)[None].contiguous()
            if tuple(chw.shape[-2:]) != self.size:
                chw = F.interpolate(chw, size=list(self.size), mode="bicubic",
                                    align_corners=False, antialias=True)
            batch.append(chw)
        pixels = torch.cat(batch).to(torch.float32)
        mean = torch.tensor(self.mean) * (1.0 / self.rescale_factor)
        std = torch.tensor(self.std) * (1.0 / self.rescale_factor)
        return pixels.sub_(mean.view(-1, 1, 1)).div_(std.view(-1, 1, 1))


def read_weights(folder: Path, dtype: torch.dtype, cache: Path | None = None) -> dict[str, Tensor]:
    """Every tensor of the folder's safetensors files, floating ones cast to `dtype`.

    Casting Salesforce's fp32 weights to bf16 costs ~0.25 s of every start (a quarter of the
    way from the loaded model to its first caption). With `cache` (a folder, shared by data
    dirs), the cast weights are written there once and later mapped from disk as they are.
    """
    safetensors = require("safetensors.torch", "blip")
    files = sorted(folder.glob("*.safetensors"))
    if not files:
        raise BlipFolderError(f"{folder} has no *.safetensors weights")
    cached = _cache_file(cache, folder, files, dtype) if cache is not None else None
    if cached is not None and cached.is_file():
        try:
            return dict(safetensors.load_file(cached))
        except Exception as exc:  # noqa: BLE001 - a torn or foreign cache: made again below
            log.warning("ignoring the cached BLIP weights %s: %s", cached, exc)
    weights: dict[str, Tensor] = {}
    for file in files:
        weights.update(safetensors.load_file(file))
    cast = {k for k, v in weights.items() if v.is_floating_point() and v.dtype != dtype}
    weights = {k: v.to(dtype) if k in cast else v for k, v in weights.items()}
    if cached is not None and cast:  # weights already in `dtype` are mapped as they are
        _write_cache(cached, weights, safetensors)
    return weights


def _cache_file(cache: Path, folder: Path, files: list[Path], dtype: torch.dtype) -> Path:
    """`cache/<folder>-<files>-<dtype>.safetensors`: a new name whenever a weights file changes
    (size or modification time), so a stale cast is never read."""
    where = hashlib.sha256(str(folder.resolve()).encode()).hexdigest()[:16]
    stats = [(f.name, st.st_size, st.st_mtime_ns) for f in files for st in [f.stat()]]
    what = hashlib.sha256(repr((CACHE_FORMAT, stats)).encode()).hexdigest()[:16]
    return cache / f"{where}-{what}-{str(dtype).removeprefix('torch.')}.safetensors"


def _write_cache(path: Path, weights: dict[str, Tensor], safetensors: Any) -> None:
    """Write the cast weights atomically and drop older casts of the same folder; a failure
    (disk full, read-only cache) only costs the next start the cast again."""
    from capdex.atomic import atomic_write_with

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_with(path, lambda tmp: safetensors.save_file(
            {k: v.contiguous() for k, v in weights.items()}, tmp), durable=False)
        for old in path.parent.glob(f"{path.name[:16]}-*.safetensors"):
            if old != path:
                old.unlink(missing_ok=True)
    except Exception as exc:  # noqa: BLE001 - an optimisation only
        log.info("could not cache the cast BLIP weights in %s: %s", path.parent, exc)


class Blip:
    """BLIP for captioning: `see` turns pixels into image embeddings, `decoder` makes the step
    function that continues a caption over them."""

    def __init__(self, folder: Path, dtype: torch.dtype, cache: Path | None = None) -> None:
        self.config = BlipConfig.read(folder)
        self.images = ImageSettings.read(folder)
        self.dtype = dtype
        w = read_weights(folder, dtype, cache)
        # Tied in transformers: the LM head reuses the word embeddings and its own bias.
        for head, tied in (("decoder.weight", "text_decoder.bert.embeddings.word_embeddings.weight"),
                           ("decoder.bias", "text_decoder.cls.predictions.bias")):
            if f"text_decoder.cls.predictions.{head}" not in w and tied in w:
                w[f"text_decoder.cls.predictions.{head}"] = w[tied]
        missing = [k for k in self._needed() if k not in w]
        if missing:
            raise BlipFolderError(f"{folder}: not a BLIP captioning checkpoint (no {missing[0]}"
                                  f" and {len(missing) - 1} more)")
        self.w = w

    def _needed(self) -> list[str]:
        c = self.config
        needed = ["vision_model.embeddings.class_embedding",
                  "vision_model.embeddings.patch_embedding.weight",
                  "vision_model.embeddings.position_embedding", "vision_model.post_layernorm.weight",
                  "text_decoder.bert.embeddings.position_embeddings.weight",
                  "text_decoder.cls.predictions.transform.dense.weight",
                  "text_decoder.cls.predictions.decoder.weight",
                  "text_decoder.cls.predictions.decoder.bias"]
        needed += [f"vision_model.encoder.layers.{i}.self_attn.qkv.weight"
                   for i in range(c.vision_layers)]
        needed += [f"text_decoder.bert.encoder.layer.{i}.crossattention.self.key.weight"
                   for i in range(c.text_layers)]
        return needed

    def linear(self, x: Tensor, name: str) -> Tensor:
        return F.linear(x, self.w[f"{name}.weight"], self.w.get(f"{name}.bias"))

    def norm(self, x: Tensor, name: str, eps: float) -> Tensor:
        return F.layer_norm(x, x.shape[-1:], self.w[f"{name}.weight"], self.w[f"{name}.bias"], eps)

    def see(self, pixels: Tensor) -> Tensor:
        """Image embeddings (N, 1 + patches, width) of the vision transformer, post-normed.

        Self-attention runs through torch's fused `scaled_dot_product_attention`: the same
        arithmetic as transformers' eager softmax(QK^T)V in one pass, half the encoder's time."""
        c, p = self.config, "vision_model"
        x = F.conv2d(pixels.to(self.dtype), self.w[f"{p}.embeddings.patch_embedding.weight"],
                     self.w[f"{p}.embeddings.patch_embedding.bias"], stride=c.patch_size)
        x = x.flatten(2).transpose(1, 2)
        batch, width = x.shape[0], x.shape[-1]
        cls = self.w[f"{p}.embeddings.class_embedding"].expand(batch, 1, -1)
        x = torch.cat([cls, x], dim=1)
        x = x + self.w[f"{p}.embeddings.position_embedding"][:, : x.size(1), :]
        tokens, heads = x.shape[1], c.vision_heads
        for i in range(c.vision_layers):
            layer = f"{p}.encoder.layers.{i}"
            h = self.norm(x, f"{layer}.layer_norm1", c.vision_eps)
            q, k, v = (self.linear(h, f"{layer}.self_attn.qkv")
                       .reshape(batch, tokens, 3, heads, width // heads).permute(2, 0, 3, 1, 4))
            context = F.scaled_dot_product_attention(q, k, v)
            h = self.linear(context.transpose(1, 2).reshape(batch, tokens, width),
                            f"{layer}.self_attn.projection")
            x = h + x
            h = self.norm(x, f"{layer}.layer_norm2", c.vision_eps)
            h = self.linear(F.gelu(self.linear(h, f"{layer}.mlp.fc1")), f"{layer}.mlp.fc2")
            x = h + x
        return self.norm(x, f"{p}.post_layernorm", c.vision_eps)

    def decoder(self, image_embeds: Tensor) -> TextDecoder:
        """A step function over `image_embeds` (one row per caption being decoded)."""
        return TextDecoder(self, image_embeds)


class TextDecoder:
    """BLIP's text decoder as a step function (capdex.captioners.decoding.StepModel): BERT
    layers with causal self-attention over the caption so far (keys and values cached) and
    cross-attention over the image (its keys and values computed once)."""

    def __init__(self, blip: Blip, image_embeds: Tensor) -> None:
        self.blip, c = blip, blip.config
        self.heads = c.text_heads
        # Keys and values are kept contiguous, as transformers' cache stores them: the matmul
        # kernels (and so the last bits of fp32 results) depend on the memory layout.
        self.cross = [
            (self._split(blip.linear(image_embeds, f"{layer}.crossattention.self.key")).contiguous(),
             self._split(blip.linear(image_embeds, f"{layer}.crossattention.self.value")).contiguous())
            for layer in self._layers()]
        self.past: list[tuple[Tensor, Tensor]] = []

    def _layers(self) -> list[str]:
        return [f"text_decoder.bert.encoder.layer.{i}" for i in range(self.blip.config.text_layers)]

    def _split(self, x: Tensor) -> Tensor:
        """(rows, t, width) -> (rows, heads, t, width / heads)."""
        return x.view(*x.shape[:-1], self.heads, -1).transpose(1, 2)

    def _attend(self, q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None) -> Tensor:
        """transformers' eager BERT attention, same ops in the same order."""
        scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(q.shape[-1])
        if mask is not None:
            scores = scores + mask
        context = torch.matmul(torch.softmax(scores, dim=-1), v).permute(0, 2, 1, 3)
        return context.reshape(*context.shape[:-2], -1)

    def __call__(self, tokens: Tensor, reorder: Tensor | None) -> Tensor:
        blip, c = self.blip, self.blip.config
        if reorder is not None and self.past:
            # Beams move between rows of the same photo only: the image rows stay as they are.
            self.past = [(k.index_select(0, reorder), v.index_select(0, reorder))
                         for k, v in self.past]
        start = self.past[0][0].shape[2] if self.past else 0
        length = tokens.shape[1]
        emb = "text_decoder.bert.embeddings"
        x = F.embedding(tokens, blip.w[f"{emb}.word_embeddings.weight"])
        x += blip.w[f"{emb}.position_embeddings.weight"][start : start + length]
        x = blip.norm(x, f"{emb}.LayerNorm", c.text_eps)
        mask = None
        if length > 1:  # a prompt: each position sees itself and what came before
            future = torch.ones(length, start + length, dtype=torch.bool).triu(start + 1)
            mask = torch.zeros(future.shape, dtype=x.dtype).masked_fill(
                future, torch.finfo(x.dtype).min)
        past = []
        for i, layer in enumerate(self._layers()):
            k = self._split(blip.linear(x, f"{layer}.attention.self.key"))
            v = self._split(blip.linear(x, f"{layer}.attention.self.value"))
            if self.past:
                k = torch.cat([self.past[i][0], k], dim=2)
                v = torch.cat([self.past[i][1], v], dim=2)
            else:
                k, v = k.contiguous(), v.contiguous()
            past.append((k, v))
            q = self._split(blip.linear(x, f"{layer}.attention.self.query"))
            h = blip.linear(self._attend(q, k, v, mask), f"{layer}.attention.output.dense")
            x = blip.norm(h + x, f"{layer}.attention.output.LayerNorm", c.text_eps)
            q = self._split(blip.linear(x, f"{layer}.crossattention.self.query"))
            h = self._attend(q, *self.cross[i], None)
            h = blip.linear(h, f"{layer}.crossattention.output.dense")
            x = blip.norm(h + x, f"{layer}.crossattention.output.LayerNorm", c.text_eps)
            h = F.gelu(blip.linear(x, f"{layer}.intermediate.dense"))
            x = blip.norm(blip.linear(h, f"{layer}.output.dense") + x, f"{layer}.output.LayerNorm",
                          c.text_eps)
        self.past = past
        head = "text_decoder.cls.predictions"
        h = F.gelu(blip.linear(x[:, -1], f"{head}.transform.dense"))
        h = blip.norm(h, f"{head}.transform.LayerNorm", c.text_eps)
        return blip.linear(h, f"{head}.decoder").float()


class Tokens:
    """The folder's tokenizer (`tokenizer.json`) for BLIP's prompts and captions."""

    def __init__(self, folder: Path, config: BlipConfig) -> None:
        tokenizers = require("tokenizers", "blip")
        path = folder / "tokenizer.json"
        if not path.is_file():
            raise BlipFolderError(f"{folder} has no tokenizer.json (download the model again)")
        self.tokenizer = tokenizers.Tokenizer.from_file(str(path))
        # A saved tokenizer.json may carry padding/truncation; transformers applies neither
        # unless asked, and a prompt padded to 128 tokens would be a different prompt.
        self.tokenizer.no_padding()
        self.tokenizer.no_truncation()
        self.config = config
        settings: dict[str, Any] = {}
        try:
            settings = json.loads((folder / "tokenizer_config.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            pass
        self.clean_up = bool(settings.get("clean_up_tokenization_spaces", False))

    def prompt(self, text: str, rows: int) -> Tensor:
        """(rows, t) ids the decoder starts from: [DEC], then the prompt's words, as BLIP's
        `generate` makes them from the processor's [CLS] ... [SEP]."""
        ids = self.tokenizer.encode(text).ids[:-1] if text else [0]
        ids[0] = self.config.bos_token_id
        return torch.tensor([ids] * rows, dtype=torch.long)

    def decode(self, ids: Tensor) -> list[str]:
        texts = self.tokenizer.decode_batch(ids.tolist(), skip_special_tokens=True)
        return [clean_up_tokenization(t) for t in texts] if self.clean_up else texts


def clean_up_tokenization(text: str) -> str:
    """transformers' `clean_up_tokenization`: no space before punctuation and contractions."""
    for before, after in ((" .", "."), (" ?", "?"), (" !", "!"), (" ,", ","), (" ' ", "'"),
                          (" n't", "n't"), (" 'm", "'m"), (" 's", "'s"), (" 've", "'ve"),
                          (" 're", "'re")):
        text = text.replace(before, after)
    return text
