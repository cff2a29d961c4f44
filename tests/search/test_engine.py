"""The read path over a library with known captions and the real embedder."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import text

from capdex.embedder import Embedder
from capdex.search.engine import SearchEngine, SearchUnavailable, SimilarNotFound
from capdex.store.models import HUMAN, Caption, Vector
from tests.search.conftest import Item

LIBRARY = [
    Item("/lib/2021/summer/beach.jpg", "a sandy beach with blue sea and a red umbrella",
         datetime(2021, 7, 14, 10), "Canon", "EOS 5D Mark II"),
    Item("/lib/2021/summer/cat.jpg", "a tabby cat sleeping on a sofa",
         datetime(2021, 8, 2, 18, 30), "Apple", "iPhone 12"),
    Item("/lib/2022/winter/snow.jpg", "a snowy mountain under a grey sky",
         datetime(2022, 1, 5, 9), "Canon", "EOS R6"),
    Item("/lib/2022/winter/kitten.jpg", "a small kitten playing with a ball of wool",
         datetime(2022, 2, 1, 12), "Apple", "iPhone 13"),
    Item("/lib/2023/city/bridge.jpg", "a suspension bridge over a river at night",
         datetime(2023, 5, 20, 22), "Sony", "ILCE-7M3"),
    Item("/lib/2023/city/cafe.jpg", "a cup of coffee on a wooden table", datetime(2023, 6, 1, 8)),
    Item("/lib/scans/family.jpg", "grandpa Ezekiel with a cat on his lap in the garden"),
    Item("/lib/2023/city/dog.jpg", "a dog running in the park", datetime(2023, 9, 9, 16),
         "Sony", "ILCE-7M3"),
]


class CountingEmbedder:
    """The real embedder, counting the texts it is asked to embed."""

    def __init__(self, real: Embedder) -> None:
        self.real, self.name, self.texts = real, real.name, []

    @property
    def dim(self) -> int:
        return self.real.dim

    def embed(self, texts):
        self.texts.extend(texts)
        return self.real.embed(texts)

    def embed_kept(self, texts):
        return self.real.embed_kept(texts)


@pytest.fixture
def library(make_engine):
    return make_engine(LIBRARY)


def names(results) -> list[str]:
    return [Path(hit.path).name for hit in results.results]


def test_an_exact_rare_word_ranks_its_photo_first_in_hybrid_and_keyword(library) -> None:
    engine, _ = library
    for mode in ("hybrid", "keyword"):
        assert names(engine.search("Ezekiel", mode=mode))[0] == "family.jpg", mode
        # even among other words that mean cats to the model
        assert names(engine.search("ezekiel cat", mode=mode))[0] == "family.jpg", mode


def test_meaning_finds_what_words_miss(library) -> None:
    engine, _ = library
    assert names(engine.search("kitty", mode="keyword")) == []
    assert names(engine.search("kitty", mode="semantic"))[0] in {"cat.jpg", "kitten.jpg"}
    assert names(engine.search("kitty"))[0] in {"cat.jpg", "kitten.jpg"}


def test_a_query_about_nothing_in_the_library_returns_few_or_none(library) -> None:
    engine, _ = library
    for mode in ("hybrid", "semantic", "keyword"):
        assert engine.search("zebra", mode=mode).total <= 1, mode
    assert engine.search("zebra", mode="semantic", min_score=-1.0).total == len(LIBRARY)


def test_min_score_is_a_cut_off_on_the_returned_score(library) -> None:
    engine, _ = library
    everything = engine.search("a cat on a sofa", min_score=-1.0, k=100)
    assert everything.total == len(LIBRARY)
    cut = 0.3
    kept = engine.search("a cat on a sofa", min_score=cut, k=100)
    assert kept.total == sum(hit.score >= cut for hit in everything.results) < len(LIBRARY)
    assert all(hit.score >= cut for hit in kept.results)
    partial = engine.search("tabby zebra", mode="keyword", min_score=0.0)
    assert names(partial) == ["cat.jpg"] and 0 < partial.results[0].score < 0.7
    assert engine.search("tabby zebra", mode="keyword", min_score=0.9).total == 0


def test_scores_are_ordered_and_within_zero_and_one(library) -> None:
    engine, _ = library
    for mode in ("hybrid", "semantic", "keyword"):
        scores = [h.score for h in engine.search("cat in the garden", mode=mode, k=50).results]
        assert scores and scores == sorted(scores, reverse=True), mode
        assert all(0.0 <= s <= 1.0 for s in scores), mode


def test_date_filters_include_whole_days(library) -> None:
    engine, _ = library
    found = engine.search("photo", min_score=-1, k=50, taken_after="2022-01-05",
                          taken_before="2023-05-20")
    assert sorted(names(found)) == ["bridge.jpg", "kitten.jpg", "snow.jpg"]
    instant = engine.search("photo", min_score=-1, k=50, taken_before="2021-08-02T18:00")
    assert names(instant) == ["beach.jpg"]  # undated photos never pass a date filter


def test_folder_filter_is_a_path_prefix_of_whole_folders(library) -> None:
    engine, _ = library
    found = engine.search("cat", min_score=-1, k=50, folder="/lib/2021")
    assert sorted(names(found)) == ["beach.jpg", "cat.jpg"]
    assert engine.search("cat", min_score=-1, folder="/lib/2021/sum").total == 0
    assert sorted(names(engine.search("cat", min_score=-1, folder="/lib/2022/winter/"))) == [
        "kitten.jpg", "snow.jpg"]


def test_camera_filter_matches_make_or_model_ignoring_case(library) -> None:
    engine, _ = library
    assert sorted(names(engine.search("photo", min_score=-1, camera="canon"))) == [
        "beach.jpg", "snow.jpg"]
    assert sorted(names(engine.search("photo", min_score=-1, camera="iphone 1"))) == [
        "cat.jpg", "kitten.jpg"]
    assert names(engine.search("photo", min_score=-1, camera="Sony", folder="/lib/2023",
                               taken_before="2023-06-30")) == ["bridge.jpg"]
    assert engine.search("photo", camera="Nikon").total == 0


def test_filters_apply_before_the_cut_to_k(make_engine) -> None:
    """Five matching photos in a small folder come back even when 40 better ones are elsewhere."""
    items = [Item(f"/big/{i}.jpg", "a tabby cat sleeping on a sofa") for i in range(40)]
    items += [Item(f"/small/{i}.jpg", f"a cat number {i} near a window") for i in range(5)]
    engine, _ = make_engine(items)
    for mode in ("hybrid", "semantic", "keyword"):
        found = engine.search("tabby cat sleeping on a sofa", k=5, mode=mode, min_score=0.0,
                              folder="/small")
        assert found.total == 5 and len(found.results) == 5, mode
        assert all(hit.path.startswith("/small/") for hit in found.results)


def test_sort_by_date_puts_newest_first_and_undated_last(library) -> None:
    engine, _ = library
    found = engine.search("photo", min_score=-1, k=50, sort="date")
    dates = [hit.taken_at for hit in found.results]
    dated = [d for d in dates if d is not None]
    assert dated == sorted(dated, reverse=True) and dates[-1] is None
    assert names(found)[0] == "dog.jpg"


def test_pages_are_disjoint_and_total_is_the_same_on_every_page(library) -> None:
    engine, _ = library
    for mode in ("hybrid", "semantic"):
        pages = [engine.search("a place", k=3, offset=o, mode=mode, min_score=-1) for o in (0, 3, 6)]
        ids = [hit.id for page in pages for hit in page.results]
        assert len(ids) == len(set(ids)) == len(LIBRARY), mode
        assert {page.total for page in pages} == {len(LIBRARY)}
        assert engine.search("a place", k=3, offset=8, mode=mode, min_score=-1).results == []


def test_results_explain_why_they_matched(library) -> None:
    engine, _ = library
    [first, *_] = engine.search("tabby cats").results
    assert Path(first.path).name == "cat.jpg"
    keyword, semantic = first.match["keyword"], first.match["semantic"]
    assert "[tabby]" in keyword["snippet"] and "[cat]" in keyword["snippet"]
    assert keyword["fields"] == ["caption", "names"] and set(keyword["terms"]) == {"tabby", "cats"}
    assert 0 < semantic["score"] <= 1 and 0 < semantic["cosine"] <= 1
    folder_hit = engine.search("winter", mode="keyword").results[0]
    assert folder_hit.match["keyword"]["fields"] == ["folders"]
    assert "keyword" not in engine.search("kitty", mode="semantic").results[0].match


def test_a_repeated_query_does_not_call_the_model(settings, embedder) -> None:
    from capdex.store.db import Database
    from tests.search.conftest import store_library

    db = Database(settings.db_url)
    store_library(db, embedder, LIBRARY)
    counting = CountingEmbedder(embedder)
    engine = SearchEngine(settings, db, counting)
    first = engine.search("a dog in the park")
    assert counting.texts.count("a dog in the park") == 1
    again = engine.search("a dog in the park", k=2)
    assert counting.texts.count("a dog in the park") == 1 and engine.query_cache.hits == 1
    assert [h.id for h in again.results] == [h.id for h in first.results][:2]
    engine.search("dog", mode="keyword")
    assert "dog" not in counting.texts  # keyword search needs no model


def test_the_query_cache_is_bounded(settings, embedder) -> None:
    from capdex.store.db import Database

    engine = SearchEngine(settings.model_copy(update={"query_cache_size": 2}),
                          Database(settings.db_url), embedder)
    for query in ("one", "two", "three"):
        engine.embed_query(query)
    assert len(engine.query_cache) == 2 and engine.query_cache.get("one") is None
    assert np.allclose(engine.query_cache.get("three"), embedder.embed(["three"])[0], atol=1e-6)


def test_similar_photos_come_from_the_caption_vector_and_exclude_the_photo(library) -> None:
    engine, ids = library
    found = engine.similar(ids["cat.jpg"], k=3)
    assert found.caption == "a tabby cat sleeping on a sofa"
    assert ids["cat.jpg"] not in [hit.id for hit in found.results] and len(found.results) == 3
    assert Path(found.results[0].path).name in {"kitten.jpg", "family.jpg"}
    scores = [hit.score for hit in found.results]
    assert scores == sorted(scores, reverse=True)
    assert len(engine.similar(ids["cat.jpg"], k=100).results) == len(LIBRARY) - 1


def test_similar_of_unknown_or_unembedded_photos_says_why(library) -> None:
    engine, ids = library
    with pytest.raises(SimilarNotFound, match="no photo with id 999"):
        engine.similar(999)
    with engine.db.session() as session:
        session.query(Vector).filter(Vector.photo_id == ids["dog.jpg"]).delete()
    with pytest.raises(SimilarNotFound, match="no caption vector"):
        engine.similar(ids["dog.jpg"])


def test_a_new_human_caption_is_found_by_keyword_at_once(library) -> None:
    engine, ids = library
    with engine.db.session() as session:
        session.add(Caption(photo_id=ids["beach.jpg"], text="Our honeymoon in Zanzibar",
                            source=HUMAN))
    [hit] = engine.search("zanzibar", mode="keyword").results
    assert hit.id == ids["beach.jpg"] and hit.caption == "Our honeymoon in Zanzibar"
    assert hit.caption_source == HUMAN


def test_without_keyword_search_hybrid_falls_back_and_keyword_mode_says_why(library) -> None:
    engine, _ = library
    with engine.db.engine.begin() as conn:
        conn.execute(text("DROP TABLE photo_text"))
    engine._keyword = None  # as a freshly started engine would see the store
    found = engine.search("kitty")
    why = "FTS5" if engine.db.engine.dialect.name == "sqlite" else "photo_text"
    assert found.mode == "semantic" and why in found.notes[0] and found.results
    with pytest.raises(SearchUnavailable, match=why):
        engine.search("kitty", mode="keyword")


def test_an_empty_library_returns_nothing(make_engine) -> None:
    engine, _ = make_engine([])
    for mode in ("hybrid", "semantic", "keyword"):
        assert engine.search("cat", mode=mode).total == 0


def test_the_folder_filter_is_exact_about_case(make_engine) -> None:
    """SQLite's LIKE ignores ASCII case: `folder=/x/Photos` also returned /x/photos/... (the
    indexer already compared exactly; both now use `capdex.paths.under`)."""
    engine, _ = make_engine([Item("/x/Photos/a.jpg", "a cat on a wall"),
                             Item("/x/photos/b.jpg", "a cat on a wall"),
                             Item("/x/PHOTOS/sub/c.jpg", "a cat on a wall")])
    for mode in ("keyword", "semantic", "hybrid"):
        assert names(engine.search("cat", mode=mode, min_score=-1, folder="/x/Photos")) == \
            ["a.jpg"], mode
        assert names(engine.search("cat", mode=mode, min_score=-1, folder="/x/photos")) == \
            ["b.jpg"], mode
    assert sorted(names(engine.search("cat", min_score=-1, folder="/x"))) == \
        ["a.jpg", "b.jpg", "c.jpg"]
