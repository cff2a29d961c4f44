"""Migration 0004 (OCR text): an older database gains `ocr_texts` and `vectors.ocr_id`, keeping
its vectors, their ids and AUTOINCREMENT; it also goes back down."""

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import inspect, text

from capdex.store.db import MIGRATIONS_DIR, Database, make_engine


def migrate(url: str, revision: str, down: bool = False) -> None:
    engine = make_engine(url)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        (command.downgrade if down else command.upgrade)(config, revision)
    engine.dispose()


def test_a_0003_database_gains_ocr_text_and_keeps_its_vectors(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    migrate(url, "0003")
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO photos (id, content_hash, size, created_at) VALUES (1, 'h', 1, '2020-01-01')"))
        conn.execute(text("INSERT INTO captions (id, photo_id, text, source, created_at) VALUES (1, 1, 'a sign', 'machine', '2020-01-01')"))
        conn.execute(text("INSERT INTO vectors (id, photo_id, caption_id, embedder, dim, vector, created_at) VALUES (7, 1, 1, 'e', 1, x'00000000', '2020-01-01')"))
    engine.dispose()

    db = Database(url)
    with db.engine.begin() as conn:
        assert conn.execute(text("SELECT id, ocr_id FROM vectors")).one() == (7, None)
        conn.execute(text("INSERT INTO ocr_texts (photo_id, text, confidence, engine, engine_version, created_at) VALUES (1, 'OPEN', 0.9, 'rapidocr', '1', '2020-01-01')"))
        conn.execute(text("DELETE FROM vectors WHERE id = 7"))
        conn.execute(text("INSERT INTO vectors (photo_id, caption_id, ocr_id, embedder, dim, vector, created_at) VALUES (1, 1, 1, 'e', 1, x'00000000', '2020-01-01')"))
        assert conn.execute(text("SELECT id FROM vectors")).scalar() == 8  # not 7 again
        conn.execute(text("DELETE FROM photos"))  # a photo's OCR text goes with it
        assert conn.execute(text("SELECT count(*) FROM ocr_texts")).scalar() == 0
    db.close()

    migrate(url, "0003", down=True)
    engine = make_engine(url)
    assert "ocr_texts" not in inspect(engine).get_table_names()
    assert "ocr_id" not in {c["name"] for c in inspect(engine).get_columns("vectors")}
    engine.dispose()
