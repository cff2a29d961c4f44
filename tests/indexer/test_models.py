"""Model changes redo only what is stale; the FAISS index never mixes two embedders' vectors."""

from __future__ import annotations

from pathlib import Path

import faiss
import pytest
from sqlalchemy import func, select

from capdex.embedder import Embedder
from capdex.settings import Settings
from capdex.indexer.pipeline import Indexer
from capdex.search.engine import SearchEngine
from capdex.store.db import Database
from capdex.store.models import Caption, Vector
from capdex.store.vectors import read_meta
from tests.conftest import ColourCaptioner


@pytest.fixture(scope="session")
def tiny_embedder(tmp_path_factory: pytest.TempPathFactory) -> Embedder:
    """A second sentence-transformers model, built offline: a 2-layer, 32-dim BERT with random
    weights and MiniLM's tokenizer. Its vectors are meaningless, but real and of another size."""
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Pooling, Transformer
    from transformers import AutoTokenizer, BertConfig, BertModel

    from capdex.embedder import resolve_location

    folder = tmp_path_factory.mktemp("tiny-embedder")
    tokenizer = AutoTokenizer.from_pretrained(resolve_location("all-MiniLM-L6-v2"))
    torch.manual_seed(0)
    bert = BertModel(BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32,
                                num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                                max_position_embeddings=128))
    bert.save_pretrained(folder / "hf")
    tokenizer.save_pretrained(folder / "hf")
    word = Transformer(str(folder / "hf"), max_seq_length=64)
    model = SentenceTransformer(modules=[word, Pooling(word.get_embedding_dimension(), "mean")],
                                device="cpu")
    model.save(str(folder / "model"))
    return Embedder(str(folder / "model"))


@pytest.fixture
def db(settings: Settings) -> Database:
    return Database(settings.db_url)


def index_file(settings: Settings) -> tuple[dict, faiss.Index]:
    """The index file's metadata (what says which vectors it holds left out) and the index."""
    meta = read_meta(settings.index_path) or {}
    return ({k: v for k, v in meta.items() if k not in ("max_id", "size", "sha256")},
            faiss.read_index(str(settings.index_path)))


def vector_ids(db: Database, embedder: Embedder) -> list[int]:
    with db.read() as session:
        return sorted(session.scalars(select(Vector.id).where(Vector.embedder == embedder.name)))


@pytest.mark.slow
def test_switching_embedders_reembeds_without_recaptioning_and_never_mixes(
        colour_folder, settings, db, embedder, tiny_embedder, colour_captioner) -> None:
    Indexer(settings, db, embedder=embedder).run([colour_folder])
    ColourCaptioner.calls = []

    summary = Indexer(settings, db, embedder=tiny_embedder).run([colour_folder])
    assert summary.reembedded == 6 and summary.new == 0 and ColourCaptioner.captioned() == 0
    meta, index = index_file(settings)
    assert meta == {"embedder": tiny_embedder.name, "dim": 32, "count": 6} and index.d == 32
    ids = sorted(faiss.vector_to_array(index.id_map).tolist())
    assert ids == vector_ids(db, tiny_embedder)
    assert not set(ids) & set(vector_ids(db, embedder))
    hits = SearchEngine(settings, db, tiny_embedder).search("anything", k=10, mode="semantic", min_score=-1.0).results
    assert len(hits) == 6

    back = Indexer(settings, db, embedder=embedder).run([colour_folder])
    assert back.reembedded == 0 and ColourCaptioner.captioned() == 0  # its vectors were kept
    meta, index = index_file(settings)
    assert meta == {"embedder": embedder.name, "dim": 384, "count": 6}
    assert sorted(faiss.vector_to_array(index.id_map).tolist()) == vector_ids(db, embedder)
    assert Path(SearchEngine(settings, db, embedder).search("red", k=1).results[0].path).name == "red.jpg"


def test_a_server_with_another_embedder_rebuilds_instead_of_mixing(
        colour_folder, settings, db, embedder, tiny_embedder, colour_captioner) -> None:
    Indexer(settings, db, embedder=embedder).run([colour_folder])
    engine = SearchEngine(settings, db, embedder)
    assert len(engine.search("red", k=10, mode="semantic", min_score=-1.0).results) == 6
    Indexer(settings, db, embedder=tiny_embedder).run([colour_folder])  # saves a 32-dim index
    assert engine.index.dim == 384 and sorted(engine.index.ids().tolist()) == vector_ids(db, embedder)
    assert len(engine.search("red", k=10, mode="semantic", min_score=-1.0).results) == 6


def test_reembed_replaces_every_vector_and_keeps_captions(colour_folder, settings, db, embedder, colour_captioner) -> None:
    Indexer(settings, db, embedder=embedder).run([colour_folder])
    before = vector_ids(db, embedder)
    with db.read() as session:
        captions = sorted(session.execute(select(Caption.id, Caption.text)).all())
    ColourCaptioner.calls = []
    summary = Indexer(settings, db, embedder=embedder, reembed=True).run([colour_folder])
    assert summary.reembedded == 6 and ColourCaptioner.captioned() == 0
    after = vector_ids(db, embedder)
    assert len(after) == 6 and not set(after) & set(before)
    with db.read() as session:
        assert sorted(session.execute(select(Caption.id, Caption.text)).all()) == captions
        assert session.scalar(select(func.count(Vector.id))) == 6
    _, index = index_file(settings)
    assert sorted(faiss.vector_to_array(index.id_map).tolist()) == after
