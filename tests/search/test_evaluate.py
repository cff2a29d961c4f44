"""The quality harness: metrics, query files, and hybrid against each mode on the committed set."""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import pytest

from capdex.search.evaluate import (
    EvalFileError,
    EvalQuery,
    evaluate,
    format_table,
    load_queries,
    ndcg_at,
    recall_at,
    reciprocal_rank,
)
from tests.search.conftest import (
    EVERYDAY_QUERIES,
    SAMPLE_QUERIES,
    Item,
    library_items,
    sample_items,
)

METRICS = ("recall_at_1", "recall_at_5", "recall_at_10", "mrr", "ndcg_at_10")


def test_metrics_on_a_known_ranking() -> None:
    ranked = ["a", "x", "b", "y"]
    rel = frozenset({"a", "b", "c"})
    assert recall_at(ranked, rel, 1) == pytest.approx(1 / 3)
    assert recall_at(ranked, rel, 10) == pytest.approx(2 / 3)
    assert reciprocal_rank(ranked, rel) == 1.0
    assert reciprocal_rank(["x", "y", "b"], rel) == pytest.approx(1 / 3)
    assert reciprocal_rank([], rel) == 0.0
    ideal = 1 + 1 / math.log2(3) + 1 / math.log2(4)
    assert ndcg_at(ranked, rel, 10) == pytest.approx((1 + 1 / math.log2(4)) / ideal)
    assert ndcg_at(["a"], frozenset({"a"}), 10) == 1.0


@pytest.mark.parametrize(("content", "reason"), [
    ("not json", "not JSON"),
    ("{}", "expected a non-empty JSON list"),
    ('[{"q": "cat"}]', "entry 0 must be"),
    ('[{"q": "cat", "rel": "cat.jpg"}]', "entry 0 must be"),
])
def test_bad_query_files_are_clear_errors(tmp_path: Path, content: str, reason: str) -> None:
    path = tmp_path / "q.json"
    path.write_text(content)
    with pytest.raises(EvalFileError, match=reason):
        load_queries(path)
    with pytest.raises(EvalFileError, match="cannot read"):
        load_queries(tmp_path / "missing.json")


def test_reports_per_mode_on_a_small_library(make_engine) -> None:
    engine, _ = make_engine([
        Item("/p/cat.jpg", "a tabby cat on a sofa"),
        Item("/p/dog.jpg", "a dog running on a beach"),
        Item("/p/car.jpg", "a red car parked in a street"),
    ])
    queries = [EvalQuery("tabby", frozenset({"cat.jpg"})),
               EvalQuery("a puppy at the seaside", frozenset({"dog.jpg"})),
               EvalQuery("red car", frozenset({"car.jpg", "gone.jpg"})),  # gone.jpg: not indexed
               EvalQuery("sunflower", frozenset({"gone.jpg"})),  # skipped: nothing indexed
               EvalQuery("a pyramid in the desert", frozenset())]
    reports = {r.mode: r for r in evaluate(engine, queries)}
    assert set(reports) == {"hybrid", "semantic", "keyword"}
    assert reports["hybrid"].queries == 3 and reports["hybrid"].skipped == 1
    assert reports["hybrid"].no_answer_queries == 1
    assert reports["hybrid"].recall_at_1 == 1.0 and reports["hybrid"].mrr == 1.0
    assert reports["keyword"].recall_at_10 == pytest.approx(2 / 3)  # "puppy" is not a word here
    assert reports["semantic"].no_answer_results <= 1
    table = format_table(list(reports.values()))
    assert "hybrid" in table and "nDCG@10" in table and "1 skipped" in table


@pytest.mark.slow
def test_hybrid_is_at_least_as_good_as_either_mode_on_the_committed_set(make_engine) -> None:
    """On the sample photos, with the captions the tagger wrote for them."""
    engine, _ = make_engine(sample_items())
    reports = {r.mode: r for r in evaluate(engine, load_queries(SAMPLE_QUERIES))}
    assert reports["hybrid"].skipped == 0
    for metric in METRICS:
        hybrid = getattr(reports["hybrid"], metric)
        assert hybrid >= getattr(reports["semantic"], metric), metric
        assert hybrid >= getattr(reports["keyword"], metric), metric
    assert reports["hybrid"].recall_at_1 >= 0.75
    assert reports["hybrid"].no_answer_results <= 0.5  # "zebra" and co. return few or none


@pytest.mark.slow
def test_queries_for_things_in_no_photo_find_nothing_on_real_photos(make_engine) -> None:
    """The default cut-off on 44 real photos (samples + Debian's wallpapers) with the tagger's
    captions: short captions ("a maze", "a pineapple") used to clear 0.2 for many unrelated
    queries. At most the tagger's own mistakes get through ("football match" finds the
    astronaut it calls "a football helmet")."""
    engine, _ = make_engine(library_items())
    queries = load_queries(EVERYDAY_QUERIES)
    reports = {r.mode: r for r in evaluate(engine, queries)}
    assert reports["hybrid"].skipped == 0 and reports["hybrid"].no_answer_queries >= 30
    assert reports["hybrid"].no_answer_results <= 0.1
    assert reports["hybrid"].recall_at_1 >= 0.4 and reports["hybrid"].mrr >= 0.5
    for words in ("zebra crossing", "pizza", "sushi", "traffic jam", "giraffe", "space"):
        found = [Path(hit.path).name for hit in engine.search(words).results if not hit.weak]
        assert not set(found) - {"astronaut-eileen-collins.png", "falcon9-rocket-launch.jpg",
                                 "hubble-deep-field.jpg"}, (words, found)
    # what was lost is still there below the cut-off, for people who lower it
    assert engine.search("puppy", min_score=0.2).results[0].path.endswith("friends_by_Aitzol_"
                                                                           "Berasategi.jpg")


def test_the_everyday_queries_name_only_library_photos() -> None:
    names = {Path(item.path).name for item in library_items()}
    queries = json.loads(EVERYDAY_QUERIES.read_text())
    assert sum(1 for q in queries if not q["rel"]) >= 30
    for query in queries:
        assert set(query["rel"]) <= names, query


def test_the_committed_queries_name_only_sample_photos() -> None:
    names = {Path(item.path).name for item in sample_items()}
    queries = json.loads(SAMPLE_QUERIES.read_text())
    assert len(queries) >= 40 and any(not q["rel"] for q in queries)
    for query in queries:
        assert set(query["rel"]) <= names, query


def in_this_checkout(module: str) -> bool:
    """True if `module` is found beside its package here (an editable install of another
    checkout can make it importable from there, mixing two versions of the code)."""
    spec = importlib.util.find_spec(module)
    package = importlib.import_module(module.rpartition(".")[0])
    return spec is not None and spec.origin is not None and package.__file__ is not None \
        and Path(spec.origin).parent == Path(package.__file__).parent


@pytest.mark.slow
def test_end_to_end_on_the_sample_photos_with_the_real_tagger(tmp_path: Path, embedder) -> None:
    """Index the sample photos with the default captioner, then evaluate every mode."""
    for module in ("capdex.captioners.tagger", "capdex.samples"):
        if not in_this_checkout(module):
            pytest.skip(f"{module} is not on this branch yet; the lead runs this after merging")
    from capdex.samples import write_samples

    from capdex.settings import Settings
    from capdex.indexer.pipeline import Indexer
    from capdex.search.engine import SearchEngine
    from capdex.store.db import Database

    folder = tmp_path / "samples"
    write_samples(folder)
    settings = Settings(data_dir=tmp_path / "data", captioner="tagger")
    db = Database(settings.db_url)
    summary = Indexer(settings, db, embedder=embedder).run([folder])
    assert summary.new >= 10 and not summary.failures, summary.failures
    engine = SearchEngine(settings, db, embedder)
    reports = {r.mode: r for r in evaluate(engine, load_queries(SAMPLE_QUERIES))}
    print(format_table(list(reports.values())))
    assert reports["hybrid"].queries >= 30
    for metric in METRICS:
        assert getattr(reports["hybrid"], metric) >= getattr(reports["semantic"], metric), metric
        assert getattr(reports["hybrid"], metric) >= getattr(reports["keyword"], metric), metric
