"""Index choice by size (exact, then IVF), search among some ids, and search by score."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from capdex.store.db import Database
from capdex.store.models import Caption, File, Photo, Vector
from capdex.store.vectors import FLAT, IVF, VectorIndex, open_index, read_meta

DIM = 384


def clustered(rng: np.random.Generator, n: int, centres: int = 500, noise: float = 0.6) -> np.ndarray:
    """Unit vectors around random centres — shaped like caption embeddings, whose nearest
    neighbours sit at cosine ~0.9 (measured on 20k MiniLM tagger-style captions)."""
    middle = rng.standard_normal((centres, DIM)).astype(np.float32)
    middle /= np.linalg.norm(middle, axis=1, keepdims=True)
    points = middle[rng.integers(0, centres, n)]
    points = points + noise * rng.standard_normal((n, DIM)).astype(np.float32) / np.sqrt(DIM)
    return (points / np.linalg.norm(points, axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    vectors = clustered(rng, 20_200)
    return np.arange(20_000, dtype=np.int64) + 1, vectors[:20_000], vectors[20_000:]


def test_ivf_recall_at_10_is_at_least_095_against_exact_search(tmp_path: Path, data) -> None:
    ids, base, queries = data
    exact = VectorIndex(tmp_path / "e.faiss", "e", DIM)
    exact.add(ids, base)
    approx = VectorIndex(tmp_path / "a.faiss", "e", DIM, exact_max=5_000)
    approx.add(ids, base)
    assert approx.fit_to_size() and approx.kind == IVF
    _, truth = exact.search(queries, 10)
    _, got = approx.search(queries, 10)
    recall = np.mean([len(set(t) & set(g)) / 10 for t, g in zip(truth, got, strict=True)])
    assert recall >= 0.95, recall


def test_the_index_switches_kind_as_it_grows_and_shrinks(tmp_path: Path, data) -> None:
    ids, base, _ = data
    path = tmp_path / "v.faiss"
    index = VectorIndex(path, "e", DIM, exact_max=3_000)
    index.add(ids[:3_000], base[:3_000])
    index.save()
    assert index.kind == FLAT and "kind" not in read_meta(path)
    index.add(ids[3_000:4_000], base[3_000:4_000])
    index.save()  # crossed the threshold: saved as IVF, holding the same vectors
    assert index.kind == IVF and read_meta(path)["kind"] == IVF
    assert sorted(index.ids().tolist()) == ids[:4_000].tolist()
    assert np.allclose(index.reconstruct(int(ids[3_500])), base[3_500], atol=1e-6)
    again = VectorIndex(path, "e", DIM, exact_max=3_000)
    assert again.load() and again.kind == IVF and len(again) == 4_000
    again.remove(ids[1_000:4_000])
    again.save()  # below half the threshold: exact again
    assert again.kind == FLAT and sorted(again.ids().tolist()) == ids[:1_000].tolist()


def test_ivf_supports_replace_remove_and_scores_of(tmp_path: Path, data) -> None:
    ids, base, queries = data
    index = VectorIndex(tmp_path / "v.faiss", "e", DIM, exact_max=2_000)
    index.add(ids[:5_000], base[:5_000])
    index.fit_to_size()
    assert index.kind == IVF
    index.add(ids[:1], base[1:2])  # replace id 1's vector
    assert len(index) == 5_000 and np.allclose(index.reconstruct(1), base[1], atol=1e-6)
    assert index.remove([1, 2, 999_999]) == 2 and len(index) == 4_998
    scores = index.scores_of(queries[0], np.array([3, 4, 1]))
    assert set(scores) == {3, 4}
    assert scores[3] == pytest.approx(float(base[2] @ queries[0]), abs=1e-5)


@pytest.mark.parametrize("exact_max", [None, 1_000])
def test_search_among_some_ids_returns_k_of_them(tmp_path: Path, data, exact_max) -> None:
    ids, base, queries = data
    index = VectorIndex(tmp_path / "v.faiss", "e", DIM, exact_max=exact_max)
    index.add(ids[:5_000], base[:5_000])
    index.fit_to_size()
    among = ids[:5_000][::97]  # 52 scattered ids
    _, got = index.search(queries[0], 20, among=among)
    assert len(got[0]) == 20 and set(got[0].tolist()) <= set(among.tolist())
    found, _ = index.within(queries[0], -1.0, among=among)
    assert sorted(found.tolist()) == sorted(among.tolist())  # small filters are searched fully


def test_within_returns_everything_above_a_score_best_first(tmp_path: Path, data) -> None:
    ids, base, queries = data
    index = VectorIndex(tmp_path / "v.faiss", "e", DIM)
    index.add(ids[:5_000], base[:5_000])
    truth = base[:5_000] @ queries[3]
    found, scores = index.within(queries[3], 0.5)
    assert sorted(found.tolist()) == sorted(ids[:5_000][truth >= 0.5].tolist())
    assert list(scores) == sorted(scores, reverse=True)
    top, _ = index.within(queries[3], 0.5, limit=3)
    assert top.tolist() == found[:3].tolist()
    assert len(index.within(queries[3], 1.01)[0]) == 0


def test_open_index_builds_ivf_from_the_database_when_large(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'capdex.db'}")
    vectors = clustered(np.random.default_rng(3), 1_200, centres=50)
    with db.session() as session:
        for i, vector in enumerate(vectors):
            photo = Photo(content_hash=f"{i:064x}", size=1)
            session.add(photo)
            session.flush()
            session.add(File(path=f"/p/{i}.jpg", size=1, mtime_ns=1, photo_id=photo.id))
            caption = Caption(photo_id=photo.id, text="x", source="machine")
            session.add(caption)
            session.flush()
            session.add(Vector(photo_id=photo.id, caption_id=caption.id, embedder="e", dim=DIM,
                               vector=vector.tobytes()))
    index = open_index(tmp_path / "v.faiss", db, "e", DIM, exact_max=1_000)
    assert index.kind == IVF and len(index) == 1_200
    assert read_meta(tmp_path / "v.faiss")["kind"] == IVF
    assert open_index(tmp_path / "v.faiss", db, "e", DIM).kind == IVF  # read back as it was saved


def test_the_file_not_its_metadata_says_which_kind_it_is(tmp_path: Path, data) -> None:
    ids, base, _ = data
    path = tmp_path / "v.faiss"
    index = VectorIndex(path, "e", DIM, exact_max=1_000)
    index.add(ids[:2_000], base[:2_000])
    index.save()
    # a crash between writing the index and its metadata leaves the old metadata behind
    path.with_suffix(".faiss.json").write_text(f'{{"embedder": "e", "dim": {DIM}, "count": 5}}')
    again = VectorIndex(path, "e", DIM, exact_max=1_000)
    assert again.load() and again.kind == IVF and len(again.ids()) == 2_000
