"""IVF-PQ for large collections, on synthetic clustered vectors of MiniLM's dimension."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from capdex.store.ivfpq import PQIndex, PQLayout

pytestmark = pytest.mark.slow  # training 64 codebooks takes a few seconds on 2 cores

DIM = 384


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(ids, vectors, queries): 4000 normalised vectors around 40 topics, as captions cluster."""
    rng = np.random.default_rng(7)
    centres = rng.normal(size=(40, DIM)).astype(np.float32)
    vectors = centres[rng.integers(0, 40, 4000)] + 0.35 * rng.normal(size=(4000, DIM))
    vectors = (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)
    queries = vectors[rng.choice(4000, 100, replace=False)] + 0.05 * rng.normal(size=(100, DIM))
    queries = (queries / np.linalg.norm(queries, axis=1, keepdims=True)).astype(np.float32)
    return np.arange(4000, dtype=np.int64) * 3 + 1, vectors, queries


@pytest.fixture(scope="module")
def index(data: tuple[np.ndarray, np.ndarray, np.ndarray]) -> PQIndex:
    ids, vectors, queries = data
    built = PQIndex.train(PQLayout(dim=DIM, nlist=16, m=64), vectors)
    built.add(ids, vectors)
    built.tune_nprobe(queries[:50])
    return built


def _recall(found: np.ndarray, exact: np.ndarray) -> float:
    return float(np.mean([len(set(f) & set(e)) / len(e) for f, e in zip(found, exact, strict=True)]))


def _source(data: tuple[np.ndarray, np.ndarray, np.ndarray]):
    _, vectors, _ = data
    return lambda wanted: (np.array(wanted), vectors[(np.array(wanted) - 1) // 3])


def test_layout_for_a_million_minilm_vectors_is_under_100_bytes_each() -> None:
    layout = PQLayout.for_size(1_000_000, DIM)
    assert layout.m == 64 and layout.bytes_per_vector == 72 and layout.nlist == 4000


def test_recall_at_10_and_memory_per_vector(index: PQIndex, data) -> None:
    ids, vectors, queries = data
    exact = ids[np.argsort(-(queries @ vectors.T), axis=1)[:, :10]]
    _, approx = index.search(queries, 10)
    _, reranked = index.search(queries, 10, rerank=_source(data))
    pq_recall, reranked_recall = _recall(approx, exact), _recall(reranked, exact)
    per_vector = index.stored_bytes_per_vector()
    print(f"nprobe={index.nprobe} recall@10 PQ={pq_recall:.3f} re-ranked={reranked_recall:.3f} "
          f"bytes/vector={per_vector:.1f}")
    assert pq_recall >= 0.35  # PQ codes alone (64 bytes for 1536 of floats; 4000 to train)
    assert reranked_recall >= 0.95
    assert per_vector < 100


def test_removal_and_a_memory_mapped_copy(index: PQIndex, data, tmp_path: Path) -> None:
    ids, _, queries = data
    path = tmp_path / "big.faiss"
    index.save(path)
    mapped = PQIndex.load(path, mmap=True)
    mapped.nprobe = index.nprobe
    assert len(mapped) == len(index)
    np.testing.assert_array_equal(mapped.search(queries, 10)[1], index.search(queries, 10)[1])

    copy = PQIndex.load(path, mmap=False)
    copy.nprobe = index.nprobe
    top = copy.search(queries[:1], 1)[1][0, 0]
    assert copy.remove([top]) == 1 and len(copy) == len(ids) - 1
    assert top not in copy.search(queries[:1], 10)[1][0]
