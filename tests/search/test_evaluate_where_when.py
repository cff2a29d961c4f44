"""The where/when eval set (issue 15): photos whose EXIF GPS and dates the test writes, indexed
with the real place stage, captioned as the tagger captioned the samples; `capdex eval` reports
the set with and without reading places and dates out of the queries, and reading them is
never worse."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from capdex.api.cli import app
from capdex.embedder import Embedder
from capdex.indexer.human import set_human_caption
from capdex.indexer.pipeline import Indexer
from capdex.search.engine import SearchEngine
from capdex.search.evaluate import evaluate, format_table, load_queries
from capdex.settings import Settings
from capdex.store.db import Database
from tests.conftest import COLOURS
from tests.search.conftest import EVAL_DIR, SAMPLE_CAPTIONS
from tests.where_photos import write_geo_photo

WHERE_WHEN_PHOTOS = EVAL_DIR / "where_when_photos.json"
WHERE_WHEN_QUERIES = EVAL_DIR / "where_when_queries.json"
METRICS = ("recall_at_1", "recall_at_5", "recall_at_10", "mrr", "ndcg_at_10")


def index_where_when(root: Path, settings: Settings, embedder: Embedder) -> Database:
    photos = {k: v for k, v in json.loads(WHERE_WHEN_PHOTOS.read_text()).items()
              if not k.startswith("_")}
    colours = list(COLOURS)
    for n, (name, fact) in enumerate(photos.items()):
        taken = datetime.fromisoformat(fact["taken"]) if fact["taken"] else None
        where = tuple(fact["where"]) if fact["where"] else None
        write_geo_photo(root / name, colours[n % len(colours)], where, taken, seed=n)
    db = Database(settings.db_url)
    Indexer(settings, db, embedder=embedder, ocr=False).run([root])
    from sqlalchemy import select

    from capdex.store.models import File

    with db.read() as session:
        files = session.execute(select(File.path, File.photo_id)).all()
    for path, photo_id in files:  # the tagger's caption of the sample it stands in for
        caption = SAMPLE_CAPTIONS[Path(path).stem + _suffix(Path(path).stem)]
        set_human_caption(db, embedder, photo_id, caption)
    return db


def _suffix(stem: str) -> str:
    return next(Path(n).suffix for n in SAMPLE_CAPTIONS if Path(n).stem == stem)


@pytest.mark.slow
def test_reading_where_and_when_is_never_worse_and_eval_reports_it(
        tmp_path: Path, db_settings: Settings, embedder: Embedder, colour_captioner) -> None:
    db = index_where_when(tmp_path / "photos", db_settings, embedder)
    engine = SearchEngine(db_settings, db, embedder)
    queries = load_queries(WHERE_WHEN_QUERIES)
    after = {r.mode: r for r in evaluate(engine, queries)}
    before = {r.mode: r for r in evaluate(engine, queries, parse=False)}
    assert after["hybrid"].skipped == 0 and after["hybrid"].queries == 14
    for mode in after:
        for metric in METRICS:
            assert getattr(after[mode], metric) >= getattr(before[mode], metric), (mode, metric)
    assert after["hybrid"].recall_at_1 >= 0.8
    # the place and time words alone already find the photos; as filters they also keep
    # "coffee in 2019" from listing the other coffee and 2019 photos
    assert after["hybrid"].no_answer_results < before["hybrid"].no_answer_results
    print("\nbefore (--no-parse):\n" + format_table(list(before.values())))
    print("after:\n" + format_table(list(after.values())))


@pytest.mark.slow
def test_capdex_eval_reports_the_where_when_set(tmp_path: Path, settings: Settings,
                                                embedder: Embedder, colour_captioner) -> None:
    index_where_when(tmp_path / "photos", settings, embedder)
    runner = CliRunner()
    result = runner.invoke(app, ["eval", str(WHERE_WHEN_QUERIES), "--data-dir",
                                 str(settings.data_dir), "--json"])
    assert result.exit_code == 0, result.stderr
    modes = json.loads(result.stdout)["modes"]
    assert modes["hybrid"]["queries"] == 14 and "weak_found" in modes["hybrid"]
    plain = runner.invoke(app, ["eval", str(WHERE_WHEN_QUERIES), "--no-parse", "--data-dir",
                                str(settings.data_dir)])
    assert plain.exit_code == 0 and "found weak" in plain.stdout
