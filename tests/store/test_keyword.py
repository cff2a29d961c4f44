"""Keyword search: the FTS5 table follows every write in the same transaction, and scores mean
the share of the query's words found."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
from sqlalchemy import delete, text, update

from capdex.store.db import Database
from capdex.store.keyword import (
    KeywordSearchUnavailable,
    keyword_index,
    query_terms,
)
from capdex.store.models import HUMAN, MACHINE, Caption, File, Photo


@pytest.fixture
def db(database_url: str) -> Database:
    """A fresh store on SQLite (FTS5) and on PostgreSQL (tsvector), in turn."""
    return Database(database_url)


@pytest.fixture
def sqlite_db(tmp_path: Path) -> Database:
    return Database(f"sqlite:///{tmp_path / 'capdex.db'}")


def add_photo(db: Database, caption: str, *paths: str, make: str | None = None,
              model: str | None = None) -> int:
    with db.session() as session:
        photo = Photo(content_hash=f"{abs(hash((caption, paths))):064x}", size=1,
                      camera_make=make, camera_model=model)
        session.add(photo)
        session.flush()
        session.add(Caption(photo_id=photo.id, text=caption, source=MACHINE))
        for path in paths:
            session.add(File(path=path, size=1, mtime_ns=1, photo_id=photo.id))
        return photo.id


def found(db: Database, query: str) -> list[int]:
    return [m.photo_id for m in keyword_index(db).match(query)]


@pytest.fixture
def library(db: Database) -> dict[str, int]:
    return {
        "cat": add_photo(db, "a tabby cat, possibly an Egyptian cat", "/p/home/IMG_0001.jpg"),
        "coffee": add_photo(db, "a cup of espresso", "/p/Paris trip/IMG_0002.jpg",
                            make="Canon", model="EOS 5D Mark II"),
        "moped": add_photo(db, "a moped, possibly a motor scooter", "/p/bikes/vespa_red.png"),
        "daisy": add_photo(db, "a daisy", "/p/garden/flower.jpg"),
    }


def test_caption_file_name_folder_and_camera_words_are_found(db, library) -> None:
    assert found(db, "egyptian") == [library["cat"]]
    assert found(db, "vespa") == [library["moped"]]
    assert found(db, "paris") == [library["coffee"]]
    assert found(db, "canon") == [library["coffee"]]
    assert found(db, "zebra") == []


def test_plurals_and_case_and_accents_match(db, library) -> None:
    assert found(db, "CATS") == [library["cat"]]
    assert found(db, "daisies") == [library["daisy"]]
    assert found(db, "éspresso") == [library["coffee"]]


def test_score_is_the_weighted_share_of_query_words_found(db, library) -> None:
    index = keyword_index(db)
    [full] = index.match("tabby cat")
    assert full.photo_id == library["cat"] and full.score == pytest.approx(1.0)
    assert set(full.terms) == {"tabby", "cat"}
    [half] = index.match("tabby zebra")  # one word of two found; the missing one is rare
    assert 0.0 < half.score < 0.6 and half.terms == ("tabby",)
    # stopwords do not count against a photo
    assert index.match("a photo of my cat")[0].score == pytest.approx(1.0)


def test_more_words_found_ranks_higher(db, library) -> None:
    add_photo(db, "a red fire engine", "/p/x/truck.jpg")
    ranked = keyword_index(db).match("red moped")
    assert ranked[0].photo_id == library["moped"]  # caption word and file-name word
    assert ranked[0].score > ranked[1].score


def test_human_caption_wins_and_its_removal_restores_the_machine_one(db, library) -> None:
    with db.session() as session:
        session.add(Caption(photo_id=library["cat"], text="Minnie asleep on the sofa", source=HUMAN))
    assert found(db, "minnie") == [library["cat"]]
    assert found(db, "tabby") == []
    with db.session() as session:
        session.execute(update(Caption).where(Caption.source == HUMAN).values(text="Minnie napping"))
    assert found(db, "sofa") == [] and found(db, "napping") == [library["cat"]]
    with db.session() as session:
        session.execute(delete(Caption).where(Caption.source == HUMAN))
    assert found(db, "minnie") == [] and found(db, "tabby") == [library["cat"]]


def test_moves_copies_and_removals_of_files_are_followed(db, library) -> None:
    with db.session() as session:
        session.execute(update(File).where(File.path == "/p/garden/flower.jpg")
                        .values(path="/p/holiday/flower.jpg"))
    assert found(db, "garden") == [] and found(db, "holiday") == [library["daisy"]]
    with db.session() as session:
        session.add(File(path="/p/best/favourite.jpg", size=1, mtime_ns=1, photo_id=library["daisy"]))
    assert found(db, "favourite") == found(db, "holiday") == [library["daisy"]]
    with db.session() as session:
        session.execute(delete(File).where(File.photo_id == library["daisy"]))
    assert found(db, "daisy") == []  # a photo without files is not a result


def test_a_file_relinked_to_other_content_moves_its_words(db, library) -> None:
    with db.session() as session:
        session.execute(update(File).where(File.path == "/p/bikes/vespa_red.png")
                        .values(photo_id=library["daisy"]))
    assert found(db, "vespa") == [library["daisy"]]
    assert found(db, "moped") == []  # the moped photo has no file left


def test_deleting_a_photo_deletes_its_words(db, library) -> None:
    with db.session() as session:
        session.execute(delete(Photo).where(Photo.id == library["cat"]))
    with db.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM photo_text")).scalar() == 3
    assert found(db, "cat") == []


def test_a_rolled_back_write_leaves_keyword_search_unchanged(db, library) -> None:
    with pytest.raises(RuntimeError), db.session() as session:
        session.add(Caption(photo_id=library["daisy"], text="grandma's garden", source=HUMAN))
        session.flush()
        raise RuntimeError("crash mid-transaction")
    assert found(db, "grandma") == [] and found(db, "daisy") == [library["daisy"]]


def test_filtering_to_some_photos(db, library) -> None:
    index = keyword_index(db)
    assert [m.photo_id for m in index.match("cat daisy", {library["daisy"]})] == [library["daisy"]]


def test_explanations_bracket_the_words_and_name_the_fields(db, library) -> None:
    why = keyword_index(db).explain("egyptian cats", [library["cat"], library["daisy"]])
    assert set(why) == {library["cat"]}
    assert "[Egyptian]" in why[library["cat"]].snippet and "[cat]" in why[library["cat"]].snippet
    assert why[library["cat"]].fields == ("caption",)
    assert keyword_index(db).explain("paris", [library["coffee"]])[library["coffee"]].fields \
        == ("folders",)


def test_query_terms_drop_stopwords_and_repeats() -> None:
    assert query_terms("Photos of my cat, my CAT!") == ["cat"]
    assert query_terms("the") == ["the"]  # only stopwords: keep them rather than nothing
    assert query_terms("motorcycle_left.png") == ["motorcycle", "left", "png"]
    assert query_terms("") == []


def test_existing_photos_get_keyword_rows_when_the_migration_runs(tmp_path: Path) -> None:
    from alembic import command
    from alembic.config import Config

    from capdex.store.db import MIGRATIONS_DIR, make_engine

    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = make_engine(url)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0001")
        connection.execute(text("INSERT INTO photos (id, content_hash, size, created_at) "
                                "VALUES (7, 'h', 1, '2024-01-01')"))
        connection.execute(text("INSERT INTO captions (photo_id, text, source, created_at) "
                                "VALUES (7, 'a lighthouse', 'machine', '2024-01-01')"))
        connection.execute(text("INSERT INTO files (path, size, mtime_ns, photo_id, indexed_at) "
                                "VALUES ('/old/coast.jpg', 1, 1, 7, '2024-01-01')"))
    engine.dispose()
    assert found(Database(url), "lighthouse coast") == [7]


def test_without_fts5_keyword_search_is_unavailable_and_says_why(sqlite_db) -> None:
    with sqlite_db.engine.begin() as conn:
        conn.execute(text("DROP TABLE photo_text"))
    index = keyword_index(sqlite_db)
    assert not index.available and "FTS5" in index.reason
    with pytest.raises(KeywordSearchUnavailable, match="FTS5"):
        index.match("cat")


def test_other_databases_are_reported_as_unsupported() -> None:
    mysql = SimpleNamespace(engine=SimpleNamespace(dialect=SimpleNamespace(name="mysql")))
    index = keyword_index(mysql)
    assert not index.available and "mysql" in index.reason


def test_a_word_in_nearly_every_photo_does_not_make_every_photo_a_match(db: Database) -> None:
    for i in range(30):
        add_photo(db, f"photo number {i}", f"/lib/IMG_{i:04d}.jpg")
    assert len(found(db, "img")) == 30  # alone, it is all there is to look for
    [only] = keyword_index(db).match("img 0007")
    assert only.terms == ("0007",) and only.score > 0.95


def test_every_sync_trigger_exists_at_the_newest_schema(sqlite_db: Database) -> None:
    """A later migration that rebuilds photos, captions or files (Alembic batch "recreate") drops
    their triggers silently; this catches it."""
    import importlib.util

    from capdex.store.db import MIGRATIONS_DIR

    [path] = (MIGRATIONS_DIR / "versions").glob("*_keyword_search.py")  # whatever its number
    spec = importlib.util.spec_from_file_location("keyword_search_migration", path)
    migration = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(migration)
    with sqlite_db.engine.connect() as conn:
        present = {r[0] for r in conn.execute(text("SELECT name FROM sqlite_master "
                                                   "WHERE type = 'trigger'"))}
    assert set(migration.TRIGGERS) <= present
