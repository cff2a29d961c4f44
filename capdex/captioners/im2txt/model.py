"""im2txt's networks in PyTorch, shaped by the state dicts LibrePhotos ships.

Attribute names are the state-dict key prefixes of `encoder-*.ckpt` (`resnet.N...`, `linear`,
`bn`) and `decoder-*.ckpt` (`embed`, `lstm`, `linear`), so the real files load strictly.
Every size is read from the state dict: LibrePhotos' files give torchvision's ResNet-152
(Bottleneck blocks, 3-8-36-3) with embed 256 / hidden 512; the tests' tiny files give a small
ResNet, through the same code.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

from capdex.captioners.base import CaptionerError

RESNET152_LAYERS = [3, 8, 36, 3]


class EncoderCNN(nn.Module):
    """ResNet trunk (no fc) -> linear -> batch norm: one embedding per image."""

    def __init__(self, trunk: nn.Sequential, feature_size: int, embed_size: int) -> None:
        super().__init__()
        self.resnet = trunk
        self.linear = nn.Linear(feature_size, embed_size)
        self.bn = nn.BatchNorm1d(embed_size, momentum=0.01)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.bn(self.linear(self.resnet(images).flatten(1)))


class DecoderRNN(nn.Module):
    def __init__(self, vocab_size: int, embed_size: int, hidden_size: int, num_layers: int):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, embed_size)
        self.lstm = nn.LSTM(embed_size, hidden_size, num_layers, batch_first=True)
        self.linear = nn.Linear(hidden_size, vocab_size)


class DecoderStep(nn.Module):
    """One decoding step, the unit both runtimes share (and what ONNX export writes).

    `tokens[i] < 0` feeds row i the image features instead of a word: Show-and-Tell's first
    step. Returns log-probabilities over the vocabulary and the new LSTM state (h, c), each
    shaped (num_layers, batch, hidden).
    """

    def __init__(self, decoder: DecoderRNN) -> None:
        super().__init__()
        self.decoder = decoder

    def forward(
        self, tokens: torch.Tensor, features: torch.Tensor, h: torch.Tensor, c: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        words = self.decoder.embed(tokens.clamp(min=0))
        x = torch.where((tokens < 0).unsqueeze(1), features, words)
        out, (h, c) = self.decoder.lstm(x.unsqueeze(1), (h, c))
        logits = self.decoder.linear(out.squeeze(1))
        return torch.log_softmax(logits, dim=-1), h, c


def read_state_dict(path: Path | None) -> dict[str, torch.Tensor]:
    """A checkpoint's tensors (`path` as `catalog.find` gives it), loaded without unpickling
    arbitrary objects."""
    if path is None:
        raise CaptionerError("the im2txt model folder has no checkpoint; install the model again")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # corrupt, truncated or foreign files
        raise CaptionerError(f"cannot read the im2txt checkpoint {path}: {exc}") from exc
    if isinstance(state, Mapping) and isinstance(state.get("state_dict"), Mapping):
        state = state["state_dict"]
    if not isinstance(state, Mapping) or not all(
        isinstance(v, torch.Tensor) for v in state.values()
    ):
        raise CaptionerError(f"{path} is not a state dict of tensors")
    # Checkpoints saved from nn.DataParallel prefix every key with "module.".
    return {k.removeprefix("module."): v for k, v in state.items()}


def _stage_depths(state: Mapping[str, torch.Tensor]) -> list[int]:
    depths = []
    for stage in (4, 5, 6, 7):  # layer1..layer4 inside nn.Sequential(*resnet.children()[:-1])
        pattern = re.compile(rf"resnet\.{stage}\.(\d+)\.")
        blocks = {int(m.group(1)) for key in state if (m := pattern.match(key))}
        if not blocks:
            raise CaptionerError(f"encoder state dict has no ResNet stage resnet.{stage}")
        depths.append(max(blocks) + 1)
    return depths


def build_encoder(state: Mapping[str, torch.Tensor]) -> EncoderCNN:
    """An EncoderCNN whose architecture matches `state`, with `state`'s weights."""
    from torchvision.models import resnet

    if "linear.weight" not in state:
        raise CaptionerError("encoder state dict has no linear.weight: not an im2txt encoder")
    depths = _stage_depths(state)
    bottleneck = "resnet.4.0.conv3.weight" in state
    block = resnet.Bottleneck if bottleneck else resnet.BasicBlock
    embed_size, feature_size = state["linear.weight"].shape
    # Built on the meta device: no time spent initialising weights the checkpoint replaces.
    with torch.device("meta"):
        if bottleneck and depths == RESNET152_LAYERS:
            net = resnet.resnet152(weights=None)
        else:
            net = resnet.ResNet(block, depths)
        encoder = EncoderCNN(nn.Sequential(*list(net.children())[:-1]), feature_size, embed_size)
    _load(encoder, state, "encoder")
    return encoder.eval()


def build_decoder(state: Mapping[str, torch.Tensor]) -> DecoderRNN:
    try:
        vocab_size, embed_size = state["embed.weight"].shape
        hidden_size = state["lstm.weight_hh_l0"].shape[1]
    except KeyError as exc:
        raise CaptionerError(f"decoder state dict lacks {exc}: not an im2txt decoder") from None
    num_layers = sum(1 for key in state if re.fullmatch(r"lstm\.weight_ih_l\d+", key))
    with torch.device("meta"):
        decoder = DecoderRNN(vocab_size, embed_size, hidden_size, num_layers)
    _load(decoder, state, "decoder")
    return decoder.eval()


def _load(module: nn.Module, state: Mapping[str, torch.Tensor], what: str) -> None:
    state = dict(state)
    # Checkpoints from before PyTorch 0.4.1 have no batch-norm step counters; they are unused
    # in eval mode, so zeros stand in for them.
    for key, value in module.state_dict().items():
        if key.endswith("num_batches_tracked") and key not in state:
            state[key] = torch.zeros((), dtype=value.dtype)
    try:
        module.load_state_dict(state, strict=True, assign=True)
    except RuntimeError as exc:
        raise CaptionerError(
            f"the im2txt {what} checkpoint does not match LibrePhotos' layout: {exc}"
        ) from exc
    if isinstance(module, DecoderRNN):
        module.lstm.flatten_parameters()
