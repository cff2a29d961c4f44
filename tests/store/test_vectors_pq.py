"""The compressed (IVF-PQ) kind of `VectorIndex`: chosen by size, exact scores through the vector
source, memory-mapped files, repair from the database."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import delete

from capdex.store import ivfpq, repo
from capdex.store.db import Database
from capdex.store.models import Caption, File, Photo, Vector
from capdex.store.vectors import FLAT, IVF, PQ, VectorIndex, _reader, open_index, read_meta
from tests.store.test_vectors_approximate import clustered

pytestmark = pytest.mark.slow  # each PQ build trains 64 codebooks: seconds on 2 cores

DIM = 384
EXACT_MAX, COMPRESS_ABOVE = 1_000, 4_000


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(ids, vectors, queries): 6,000 caption-like vectors with scattered ids, 100 queries."""
    vectors = clustered(np.random.default_rng(11), 6_100)
    return np.arange(6_000, dtype=np.int64) * 7 + 3, vectors[:6_000], vectors[6_000:]


@pytest.fixture(scope="module")
def source(data):
    """The stored vectors, as the database would give them."""
    ids, vectors, _ = data
    return _reader(ids, vectors)


@pytest.fixture(scope="module")
def built(data, source, tmp_path_factory) -> VectorIndex:
    """An index grown past both thresholds (exact → IVF → PQ) and saved."""
    ids, vectors, _ = data
    index = VectorIndex(tmp_path_factory.mktemp("pq") / "v.faiss", "e", DIM, EXACT_MAX,
                        compress_above=COMPRESS_ABOVE, source=source)
    index.add(ids[:COMPRESS_ABOVE], vectors[:COMPRESS_ABOVE])
    assert index.fit_to_size() and index.kind == IVF  # at the threshold: not yet compressed
    index.add(ids[COMPRESS_ABOVE:], vectors[COMPRESS_ABOVE:])
    index.save()  # past it: compressed when saved
    assert index.kind == PQ
    return index


def exact_top(vectors: np.ndarray, ids: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    return ids[np.argsort(-(queries @ vectors.T), axis=1, kind="stable")[:, :k]]


def test_the_kind_switches_at_the_threshold_and_is_saved(built: VectorIndex) -> None:
    meta = read_meta(built.path)
    assert meta["kind"] == PQ and meta["count"] == 6_000 and meta["trained_on"] == 6_000
    assert 0 < meta["slack"] < 0.5
    assert len(built) == 6_000


def test_recall_at_10_against_exact_search(built: VectorIndex, data) -> None:
    ids, vectors, queries = data
    scores, found = built.search(queries, 10)
    truth = exact_top(vectors, ids, queries, 10)
    recall = np.mean([len(set(t) & set(f)) / 10 for t, f in zip(truth, found, strict=True)])
    assert recall >= 0.95, recall
    # the scores given are the exact ones, best first
    rows = {int(i): r for r, i in enumerate(ids)}
    exact = np.array([[vectors[rows[int(i)]] @ q for i in row] for q, row in zip(queries, found,
                                                                                  strict=True)])
    np.testing.assert_allclose(scores, exact, atol=1e-5)
    assert (np.diff(scores, axis=1) <= 0).all()


def test_within_keeps_exactly_what_scores_high_enough(built: VectorIndex, data) -> None:
    ids, vectors, queries = data
    found_all = truth_all = 0
    for query in queries[:20]:
        truth = vectors @ query
        # its cluster mates (cosine ~0.73; other vectors score under 0.3), as a relevance
        # cut-off keeps the related captions; the PQ error alone is up to ~0.2 here
        threshold = 0.55
        found, scores = built.within(query, threshold)
        wanted = set(ids[truth >= threshold].tolist())
        assert set(found.tolist()) <= wanted  # never one that scores too low
        found_all, truth_all = found_all + len(found), truth_all + len(wanted)
        rows = np.searchsorted(ids, found)
        np.testing.assert_allclose(scores, vectors[rows] @ query, atol=1e-5)
        assert list(scores) == sorted(scores, reverse=True)
        top, _ = built.within(query, threshold, limit=5)
        assert top.tolist() == found[:5].tolist()
    assert found_all / truth_all >= 0.95, found_all / truth_all


def test_within_and_search_among_some_ids(built: VectorIndex, data) -> None:
    ids, vectors, queries = data
    among = ids[::97]
    found, _ = built.within(queries[0], -1.0, among=among)
    assert sorted(found.tolist()) == sorted(among.tolist())  # small filters are searched fully
    _, top = built.search(queries[0], 5, among=among)
    rows = np.searchsorted(ids, among)
    assert top[0].tolist() == exact_top(vectors[rows], among, queries[:1], 5)[0].tolist()


def test_scores_of_and_reconstruct_are_exact(built: VectorIndex, data) -> None:
    ids, vectors, queries = data
    scores = built.scores_of(queries[1], np.array([ids[5], ids[4000], 2]))  # 2 is not held
    assert set(scores) == {int(ids[5]), int(ids[4000])}
    assert scores[int(ids[4000])] == pytest.approx(float(vectors[4000] @ queries[1]), abs=1e-6)
    np.testing.assert_array_equal(built.reconstruct(int(ids[77])), vectors[77])


def test_the_file_is_under_100_bytes_a_vector(built: VectorIndex) -> None:
    import faiss

    empty = faiss.read_index(str(built.path))
    empty.reset()  # the same trained cells and codebooks, no vectors
    per_vector = (built.path.stat().st_size - faiss.serialize_index(empty).size) / len(built)
    assert per_vector < 100, per_vector


def test_a_memory_mapped_copy_searches_alike_and_can_change(built: VectorIndex, data, source,
                                                            tmp_path: Path) -> None:
    ids, vectors, queries = data
    path = tmp_path / "v.faiss"
    built.save()
    for name in ("v.faiss", "v.faiss.json"):
        (tmp_path / name).write_bytes((built.path.parent / name).read_bytes())
    mapped = VectorIndex(path, "e", DIM, EXACT_MAX, compress_above=COMPRESS_ABOVE,
                         source=source, mmap=True)
    assert mapped.load() and mapped.kind == PQ and ivfpq.is_mapped(mapped._index)
    np.testing.assert_array_equal(mapped.search(queries, 10)[1], built.search(queries, 10)[1])

    # FAISS maps the lists read-only: a change copies them into RAM first
    top = int(mapped.search(queries[:1], 1)[1][0, 0])
    assert mapped.remove([top]) == 1 and not ivfpq.is_mapped(mapped._index)
    assert top not in mapped.search(queries[:1], 10)[1][0]
    mapped.add(ids[:1], vectors[1:2])  # replace: one vector per id, whatever the source says
    assert len(mapped) == 5_999 and (mapped.ids() == ids[0]).sum() == 1
    mapped.save()
    assert ivfpq.is_mapped(mapped._index)  # mapped again, from the new file
    again = VectorIndex(path, "e", DIM, source=source, mmap=True)
    assert again.load() and len(again) == 5_999 and top not in again.ids()


def test_it_leaves_the_compressed_kind_when_it_shrinks(built: VectorIndex, data, source) -> None:
    ids, vectors, _ = data
    copy = built.like()
    assert copy.load() and copy.kind == PQ
    copy.remove(ids[1_500:])  # below half the threshold
    assert copy.fit_to_size() and copy.kind == IVF
    assert sorted(copy.ids().tolist()) == ids[:1_500].tolist()
    np.testing.assert_array_equal(copy.reconstruct(int(ids[10])), vectors[10])  # exact floats
    copy.remove(ids[400:])
    assert copy.fit_to_size() and copy.kind == FLAT


def test_without_a_source_it_is_never_compressed(data) -> None:
    ids, vectors, _ = data
    index = VectorIndex(Path("unused.faiss"), "e", DIM, EXACT_MAX, compress_above=COMPRESS_ABOVE)
    index.add(ids, vectors)
    assert index.fit_to_size() and index.kind == IVF


# -- against the database ------------------------------------------------------------------------
def store_vectors(db: Database, vectors: np.ndarray) -> None:
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


def test_open_index_compresses_maps_and_repairs_from_the_database(tmp_path: Path,
                                                                  database_url: str, data) -> None:
    _, vectors, queries = data
    db = Database(database_url)
    store_vectors(db, vectors[:1_500])
    path = tmp_path / "v.faiss"
    index = open_index(path, db, "e", DIM, 500, compress_above=1_000, mmap=True)
    assert index.kind == PQ and len(index) == 1_500 and ivfpq.is_mapped(index._index)

    with db.session() as session:  # the database loses three vectors the file still has
        gone = session.scalars(Vector.__table__.select().with_only_columns(Vector.id)
                               .order_by(Vector.id).limit(3)).all()
        session.execute(delete(Vector).where(Vector.id.in_(gone)))
    index.remove(index.ids()[-2:])  # and the file loses two the database has
    index.save()
    repaired = open_index(path, db, "e", DIM, 500, compress_above=1_000, mmap=True)
    assert repaired.kind == PQ and ivfpq.is_mapped(repaired._index)
    assert sorted(repaired.ids().tolist()) == repo.vector_ids(db, "e").tolist()
    # scores through the database are the exact ones
    scores, found = repaired.search(queries[:3], 5)
    stored_ids, stored = repo.load_vectors(db, found[0].tolist(), DIM)
    exact = dict(zip(stored_ids.tolist(), (stored @ queries[0]).tolist(), strict=True))
    np.testing.assert_allclose(scores[0], [exact[i] for i in found[0].tolist()], atol=1e-5)
