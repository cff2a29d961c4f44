"""`capdex import` embeds as an index run does (indexer/embed.py); no Spark needed: the Parquet is
written with pandas. The Spark round trips are in test_spark_job.py and test_spark_cluster.py."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import delete, select

from capdex.embedder import Embedder
from capdex.settings import Settings
from capdex.indexer.importer import import_parquet
from capdex.indexer.embed import embedding_text
from capdex.indexer.pipeline import Indexer
from capdex.indexer.spark_job import COLUMNS
from capdex.store.db import Database
from capdex.store.models import Caption, File, OcrText, Photo, Vector
from tests.indexer.test_ocr import PHRASE, CountingOcr


@pytest.fixture
def page(tmp_path: Path) -> Path:
    import skimage

    root = tmp_path / "photos"
    root.mkdir()
    shutil.copy(Path(skimage.__file__).parent / "data" / "page.png", root / "page.png")
    return root


def _vectors(db: Database) -> dict[int, tuple[int | None, np.ndarray]]:
    with db.read() as session:
        return {v.photo_id: (v.ocr_id, np.frombuffer(v.vector, dtype=np.float32))
                for v in session.scalars(select(Vector))}


def test_an_imported_photo_with_text_gets_the_vector_an_index_run_gives_it(
    settings: Settings, colour_captioner, embedder: Embedder, page: Path
) -> None:
    """A photo whose vector is missing (an embedder change, a --reembed cut short) is embedded
    by `capdex import` from its caption *and* its OCR text, exactly as `capdex index` does."""
    db = Database(settings.db_url)
    Indexer(settings, db, embedder=embedder, ocr_engine=CountingOcr("t1", PHRASE)).run([page])
    indexed = _vectors(db)
    with db.read() as session:
        photo = session.scalars(select(Photo)).one()
        caption = session.scalars(select(Caption)).one().text
        ocr = session.scalars(select(OcrText)).one()
        path = session.scalars(select(File.path)).one()
    assert ocr.text == PHRASE and indexed[photo.id][0] == ocr.id
    with db.session() as session:
        session.execute(delete(Vector))

    # The same photo, captioned elsewhere with another embedder: its vector is not used.
    row = dict.fromkeys(COLUMNS)
    row.update(path=path, size=photo.size, mtime_ns=1, content_hash=photo.content_hash,
               caption=caption, captioner="test-colour", embedder="another-model", dim=2,
               vector=[1.0, 0.0])
    source = settings.data_dir.parent / "run.parquet"
    pd.DataFrame([row], columns=COLUMNS).to_parquet(source)
    summary = import_parquet(settings, db, source, embedder=embedder)

    assert summary.reembedded == 1
    imported = _vectors(db)
    assert imported[photo.id][0] == ocr.id  # the vector records the text it embedded
    np.testing.assert_allclose(imported[photo.id][1], indexed[photo.id][1], atol=1e-6)
    expected = embedder.embed([embedding_text(caption, PHRASE, settings.ocr_embed_words)])[0]
    np.testing.assert_allclose(imported[photo.id][1], expected, atol=1e-6)
    caption_only = embedder.embed([caption])[0]
    assert float(caption_only @ imported[photo.id][1]) < 0.99
    db.close()
