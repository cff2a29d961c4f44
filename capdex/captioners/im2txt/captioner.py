"""The `im2txt` (PyTorch) and `im2txt-onnx` (ONNX Runtime) captioners.

What the model computes lives in one place (preprocessing, decoding, the vocabulary); each
runtime only provides `start(pixels)` (image -> first step) and `step(tokens, state)`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Protocol

import numpy as np

from capdex.captioners import catalog
from capdex.captioners.base import Captioner, ModelSpec
from capdex.captioners.im2txt.decoding import beam_search
from capdex.captioners.im2txt.vocab import SPECIAL_TOKENS, Vocabulary, load_vocab
from capdex.captioners.lifecycle import ModelHandle, require

if TYPE_CHECKING:
    from PIL import Image

    from capdex.settings import Settings

IMAGE_SIZE = 224
MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)

State = tuple[np.ndarray, ...]


def preprocess(images: Sequence[Image.Image]) -> np.ndarray:
    """(N, 3, 224, 224) float32, as LibrePhotos feeds the encoder: a Lanczos resize to 224x224
    (no crop), scaled to [0, 1], normalised with ImageNet's mean and std.

    `reducing_gap` shrinks very large photos by whole factors first; Pillow documents the result
    as indistinguishable from a direct Lanczos resize at a fraction of the time.
    """
    from PIL import Image

    batch = np.stack(
        [
            np.asarray(
                image.convert("RGB").resize(
                    (IMAGE_SIZE, IMAGE_SIZE), Image.Resampling.LANCZOS, reducing_gap=3.0
                ),
                dtype=np.float32,
            )
            for image in images
        ]
    )
    batch = (batch / 255.0 - MEAN) / STD
    return np.ascontiguousarray(batch.transpose(0, 3, 1, 2), dtype=np.float32)


def to_sentence(vocab: Vocabulary, ids: list[int]) -> str:
    words = [w for w in vocab.words(ids) if w not in SPECIAL_TOKENS]
    text = " ".join(words)
    for mark in (" .", " ,", " !", " ?", " '"):
        text = text.replace(mark, mark.strip())
    return text.strip()


class Runtime(Protocol):
    vocab: Vocabulary

    def start(self, pixels: np.ndarray) -> tuple[np.ndarray, State]: ...

    def step(self, tokens: np.ndarray, state: State) -> tuple[np.ndarray, State]: ...


class TorchRuntime:
    """Encoder and decoder state dicts loaded into PyTorch modules."""

    def __init__(self, folder: Path) -> None:
        import torch

        from capdex.captioners.im2txt import model

        self._torch = torch
        self.vocab = load_vocab(folder / "data" / "vocab.pkl")
        self.encoder = model.build_encoder(
            model.read_state_dict(catalog.find(folder, "models/encoder-*.ckpt"))
        )
        decoder = model.build_decoder(
            model.read_state_dict(catalog.find(folder, "models/decoder-*.ckpt"))
        )
        self.decoder_step = model.DecoderStep(decoder).eval()
        self.layers = decoder.lstm.num_layers
        self.hidden = decoder.lstm.hidden_size
        self.embed = decoder.embed.embedding_dim
        if decoder.embed.num_embeddings != len(self.vocab):
            from capdex.captioners.base import CaptionerError

            raise CaptionerError(
                f"the decoder knows {decoder.embed.num_embeddings} words but vocab.pkl has "
                f"{len(self.vocab)}: the files in {folder} do not belong together"
            )

    def start(self, pixels: np.ndarray) -> tuple[np.ndarray, State]:
        torch = self._torch
        with torch.inference_mode():
            features = self.encoder(torch.from_numpy(pixels))
            n = features.shape[0]
            zeros = torch.zeros(self.layers, n, self.hidden)
            tokens = torch.full((n,), -1, dtype=torch.int64)
            logprobs, h, c = self.decoder_step(tokens, features, zeros, zeros)
        return logprobs.numpy(), (h.numpy(), c.numpy())

    def step(self, tokens: np.ndarray, state: State) -> tuple[np.ndarray, State]:
        torch = self._torch
        h, c = state
        with torch.inference_mode():
            logprobs, h2, c2 = self.decoder_step(
                torch.from_numpy(np.ascontiguousarray(tokens)),
                torch.zeros(len(tokens), self.embed),
                torch.from_numpy(np.ascontiguousarray(h)),
                torch.from_numpy(np.ascontiguousarray(c)),
            )
        return logprobs.numpy(), (h2.numpy(), c2.numpy())


class OnnxRuntime:
    """The exported encoder and decoder step in ONNX Runtime sessions; no PyTorch needed."""

    def __init__(self, folder: Path, threads: int | None = None) -> None:
        ort = require("onnxruntime", "onnx")
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        providers = ["CPUExecutionProvider"]
        self.vocab = load_vocab(folder / "data" / "vocab.pkl")
        self.encoder = ort.InferenceSession(
            str(folder / "onnx" / "encoder.onnx"), options, providers=providers
        )
        self.decoder_step = ort.InferenceSession(
            str(folder / "onnx" / "decoder_step.onnx"), options, providers=providers
        )
        inputs = {i.name: i.shape for i in self.decoder_step.get_inputs()}
        self.layers, _, self.hidden = inputs["h"]
        self.embed = inputs["features"][1]

    def start(self, pixels: np.ndarray) -> tuple[np.ndarray, State]:
        (features,) = self.encoder.run(["features"], {"images": pixels})
        n = features.shape[0]
        zeros = np.zeros((self.layers, n, self.hidden), dtype=np.float32)
        return self._run(np.full((n,), -1, dtype=np.int64), features, zeros, zeros)

    def step(self, tokens: np.ndarray, state: State) -> tuple[np.ndarray, State]:
        features = np.zeros((len(tokens), self.embed), dtype=np.float32)
        return self._run(tokens.astype(np.int64), features, *state)

    def _run(self, tokens: np.ndarray, features: np.ndarray, h: np.ndarray,
             c: np.ndarray) -> tuple[np.ndarray, State]:
        logprobs, h2, c2 = self.decoder_step.run(
            ["logprobs", "h_out", "c_out"],
            {"tokens": tokens, "features": features, "h": h, "c": c},
        )
        return logprobs, (h2, c2)


class Im2txtCaptioner(Captioner):
    name: ClassVar[str] = "im2txt"
    spec: ClassVar[ModelSpec] = ModelSpec(
        "torch",
        "Show-and-Tell (ResNet-152 + LSTM) as LibrePhotos ships it.",
        extra="im2txt",
        folder="im2txt",
        required=("models/encoder-*.ckpt", "models/decoder-*.ckpt", "data/vocab.pkl"),
        archive_url=(
            "https://github.com/LibrePhotos/librephotos-docker/releases/download/0.1/"
            "im2txt.tar.gz"
        ),
        archive_sha256="980670c0365c0e32b5fecfc0907bfee4742bcd6a40e0d6ac5692c69bbd49ccc4",
    )
    batch_size: ClassVar[int] = 16
    input_size: ClassVar[int | None] = IMAGE_SIZE

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self._model: ModelHandle[Runtime] = ModelHandle(
            self.name, self._load, idle_ttl=settings.model_idle_ttl
        )

    @property
    def folder(self) -> Path:
        return catalog.require_installed(self.name, self.settings)

    @property
    def beams(self) -> int:
        return self.settings.caption_beams or 1  # LibrePhotos decodes greedily

    @property
    def version(self) -> str:
        weights = catalog.weights_identity(self.name, self.settings)
        s = self.settings
        return (
            f"{self.name}@{weights};beams={self.beams};max={s.caption_max_length};"
            f"min={s.caption_min_length or 0}"
        )

    def _load(self) -> Runtime:
        require("torch", self.spec.extra or "im2txt")
        require("torchvision", self.spec.extra or "im2txt")
        return TorchRuntime(self.folder)

    def caption_batch(self, images: Sequence[Image.Image]) -> list[str]:
        if not images:
            return []
        pixels = preprocess(images)
        with self._model.use() as runtime:
            first, state = runtime.start(pixels)
            ids = beam_search(
                first,
                state,
                runtime.step,
                end_id=runtime.vocab.id("<end>"),
                beams=self.beams,
                max_length=self.settings.caption_max_length,
                min_length=self.settings.caption_min_length or 0,
            )
            return [to_sentence(runtime.vocab, row) for row in ids]

    def warm_up(self) -> None:
        with self._model.use():
            pass

    def close(self) -> None:
        self._model.unload()


class Im2txtOnnxCaptioner(Im2txtCaptioner):
    name: ClassVar[str] = "im2txt-onnx"
    spec: ClassVar[ModelSpec] = ModelSpec(
        "onnx",
        "im2txt exported to ONNX, run with ONNX Runtime (same tokens as im2txt).",
        extra="onnx",
        folder="im2txt",
        required=("onnx/encoder.onnx", "onnx/decoder_step.onnx", "data/vocab.pkl"),
        made_by="capdex models export im2txt",
    )

    def _load(self) -> Runtime:
        return OnnxRuntime(self.folder)
