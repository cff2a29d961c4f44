"""The embedder: ONNX Runtime and sentence-transformers agree, and the export happens once."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np
import pytest

from capdex import embedder as embedder_module
from capdex.embedder import Embedder, EmbedderError, onnx_unsupported, resolve_location

TEXTS = ["a cat", "  a cat  ", "A dog on the beach at sunset, with waves", "",
         "zebra crossing " * 200, "Ünïcödé café naïve 東京 🐱", "x",
         *("word " * n for n in range(1, 80, 7))]


@pytest.mark.slow
def test_onnx_vectors_equal_sentence_transformers(embedder: Embedder) -> None:
    torch_embedder = Embedder("all-MiniLM-L6-v2", backend="torch")
    onnx_vectors = embedder.embed(TEXTS)
    torch_vectors = torch_embedder.embed(TEXTS)
    assert embedder.runtime == "onnx" and torch_embedder.runtime == "torch"
    assert embedder.name == torch_embedder.name and embedder.dim == torch_embedder.dim == 384
    assert onnx_vectors.dtype == np.float32 and onnx_vectors.shape == torch_vectors.shape
    assert (onnx_vectors * torch_vectors).sum(axis=1).min() > 0.9999
    np.testing.assert_allclose(np.linalg.norm(onnx_vectors, axis=1), 1.0, atol=1e-5)


def test_batches_do_not_change_a_text_s_vector(embedder: Embedder) -> None:
    """Texts of different lengths are padded together: each row must equal the text alone."""
    together = embedder.embed(TEXTS[:4])
    alone = np.vstack([embedder.embed([text]) for text in TEXTS[:4]])
    assert (together * alone).sum(axis=1).min() > 0.99999
    assert embedder.embed([]).shape == (0, 384)


@pytest.mark.slow
def test_first_run_exports_once_under_a_lock(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                             embedder: Embedder) -> None:
    embedder.warm_up()  # the session's own export (run alone, this test made it) is not counted
    exports: list[Path] = []
    real_export = embedder_module.export_onnx

    def counting_export(location: Path, out: Path) -> None:
        exports.append(out)
        real_export(location, out)

    monkeypatch.setattr(embedder_module, "export_onnx", counting_export)
    cache = tmp_path / "embedders"
    fresh = [Embedder("all-MiniLM-L6-v2", cache_dir=cache) for _ in range(2)]
    threads = [threading.Thread(target=e.warm_up) for e in fresh]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(exports) == 1
    (folder,) = [p for p in cache.iterdir() if p.is_dir()]
    assert (folder / "model.onnx").is_file()
    assert json.loads((folder / "capdex-export.json").read_text())["source"] == str(
        Path(resolve_location("all-MiniLM-L6-v2")).resolve())
    assert not [p for p in cache.iterdir() if p.name.endswith(".tmp")]
    assert all(e.runtime == "onnx" for e in fresh)
    np.testing.assert_allclose(fresh[0].embed(TEXTS[:3]), embedder.embed(TEXTS[:3]), atol=1e-5)
    Embedder("all-MiniLM-L6-v2", cache_dir=cache).warm_up()
    assert len(exports) == 1


def _sentence_transformers_folder(folder: Path, modules: list[str], pooling: str) -> Path:
    folder.mkdir()
    (folder / "tokenizer.json").write_text("{}")
    (folder / "modules.json").write_text(json.dumps([
        {"idx": i, "name": str(i), "path": "1_Pooling" if m == "Pooling" else "",
         "type": f"sentence_transformers.models.{m}"} for i, m in enumerate(modules)]))
    (folder / "1_Pooling").mkdir()
    (folder / "1_Pooling" / "config.json").write_text(json.dumps(
        {"word_embedding_dimension": 8, f"pooling_mode_{pooling}": True}))
    return folder


def test_only_what_the_graph_reproduces_runs_on_onnx(tmp_path: Path) -> None:
    mean = _sentence_transformers_folder(tmp_path / "mean", ["Transformer", "Pooling",
                                                              "Normalize"], "mean_tokens")
    cls = _sentence_transformers_folder(tmp_path / "cls", ["Transformer", "Pooling"], "cls_token")
    dense = _sentence_transformers_folder(tmp_path / "dense", ["Transformer", "Pooling", "Dense"],
                                          "mean_tokens")
    assert onnx_unsupported(str(mean)) is None
    assert "cls_token" in (onnx_unsupported(str(cls)) or "")
    assert "Dense" in (onnx_unsupported(str(dense)) or "")
    assert "not a local" in (onnx_unsupported("sentence-transformers/all-mpnet-base-v2") or "")
    with pytest.raises(EmbedderError, match="CAPDEX_EMBEDDER_BACKEND=torch"):
        Embedder(str(dense), backend="onnx", cache_dir=tmp_path / "cache").warm_up()


def test_a_fixed_list_is_embedded_once_and_kept(tmp_path: Path, embedder: Embedder) -> None:
    texts = ["a typical caption", "another typical caption"]
    assert embedder.cache_dir is not None
    before = set(embedder.cache_dir.glob("*/kept-*.npy"))
    first = embedder.embed_kept(texts)
    kept = list(set(embedder.cache_dir.glob("*/kept-*.npy")) - before)
    assert len(kept) == 1
    np.testing.assert_array_equal(np.load(kept[0]), first)
    np.testing.assert_allclose(first, embedder.embed(texts), atol=1e-6)
    np.save(kept[0], first[::-1])  # what is on disk is what a later process gets
    np.testing.assert_array_equal(embedder.embed_kept(texts), first[::-1])
    kept[0].unlink()


def test_data_dirs_share_one_export_in_the_user_cache(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """A new library must not export MiniLM again (~8 s of CPU beside the captioner's start)."""
    from capdex.settings import Settings

    monkeypatch.delenv("CAPDEX_EMBEDDER_ONNX_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    one, two = Settings(data_dir=tmp_path / "one"), Settings(data_dir=tmp_path / "two")
    assert one.embedder_cache_dir == two.embedder_cache_dir == tmp_path / "cache/capdex/embedders"
    assert embedder_module.default_cache_dir() == one.embedder_cache_dir
    monkeypatch.setenv("CAPDEX_EMBEDDER_ONNX_DIR", str(tmp_path / "mine"))
    assert Settings(data_dir=tmp_path / "one").embedder_cache_dir == tmp_path / "mine"
