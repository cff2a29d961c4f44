"""Migration 0005: keyword search (`photo_text`, migration 0003) covers the text photos show,
kept in sync by triggers on `ocr_texts`; down and up again keeps the rows."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from sqlalchemy import inspect, text

from capdex.store.db import Database, make_engine
from tests.store.test_ocr_migration import migrate


def matches(db: Database, query: str) -> list[int]:
    with db.engine.connect() as conn:
        return [r[0] for r in conn.execute(
            text("SELECT rowid FROM photo_text WHERE photo_text MATCH :q"), {"q": query})]


def columns(db: Database) -> list[str]:
    return [c["name"] for c in inspect(db.engine).get_columns("photo_text")]


def test_keyword_search_covers_the_text_photos_show(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'x.db'}"
    db = Database(url)
    with db.engine.begin() as conn:
        conn.exec_driver_sql("INSERT INTO photos (id, content_hash, size, created_at) VALUES (1, 'h', 1, '2020-01-01')")
        conn.exec_driver_sql("INSERT INTO files (path, size, mtime_ns, photo_id, indexed_at) VALUES ('/p/page.png', 1, 1, 1, '2020-01-01')")
        conn.exec_driver_sql("INSERT INTO captions (photo_id, text, source, created_at) VALUES (1, 'a page of text', 'machine', '2020-01-01')")
        conn.exec_driver_sql("INSERT INTO ocr_texts (photo_id, text, engine, engine_version, created_at) VALUES (1, 'markers of the coins', 'rapidocr', '1', '2020-01-01')")
    assert "ocr" in columns(db)
    assert matches(db, "coins") == [1] and matches(db, "page") == [1]
    assert matches(db, "ocr: coins") == [1] and matches(db, "caption: coins") == []
    with db.engine.begin() as conn:
        conn.exec_driver_sql("UPDATE ocr_texts SET text = 'Baker Street' WHERE photo_id = 1")
    assert matches(db, "coins") == [] and matches(db, "baker") == [1]
    db.close()

    migrate(url, "0004", down=True)
    old = SimpleNamespace(engine=make_engine(url))  # look without migrating back up
    assert "ocr" not in columns(old) and matches(old, "page") == [1]
    old.engine.dispose()

    db = Database(url)  # up again: the text is back
    assert matches(db, "baker") == [1]
    with db.engine.begin() as conn:
        conn.exec_driver_sql("DELETE FROM ocr_texts")
    assert matches(db, "baker") == [] and matches(db, "page") == [1]
