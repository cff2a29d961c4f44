"""Opening the database: migrations, SQLite settings, clear errors."""

from pathlib import Path

import pytest
from sqlalchemy import inspect, text

from capdex.store.db import Database, StoreError


def test_migrations_create_the_schema_once(database_url: str) -> None:
    url = database_url
    db = Database(url)
    tables = set(inspect(db.engine).get_table_names())
    assert {"photos", "files", "captions", "vectors", "errors", "alembic_version"} <= tables
    db.close()
    Database(url).close()  # a second open finds the schema current


def test_sqlite_runs_in_wal_mode_with_foreign_keys(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'x.db'}")
    with db.engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1


def test_an_unusable_database_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(StoreError, match="cannot open database"):
        Database(f"sqlite:///{blocker / 'capdex.db'}")


def test_upgrading_a_0001_database_keeps_its_rows_and_never_reuses_vector_ids(tmp_path: Path) -> None:
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
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO photos (id, content_hash, size, created_at) VALUES (1, 'h', 1, '2020-01-01')"))
        conn.execute(text("INSERT INTO captions (id, photo_id, text, source, created_at) VALUES (1, 1, 'a cat', 'machine', '2020-01-01')"))
        conn.execute(text("INSERT INTO vectors (id, photo_id, caption_id, embedder, dim, vector, created_at) VALUES (7, 1, 1, 'e', 1, x'00000000', '2020-01-01')"))
    engine.dispose()

    db = Database(url)  # migrates to the newest schema
    with db.engine.begin() as conn:
        assert conn.execute(text("SELECT text FROM captions")).scalar() == "a cat"
        assert conn.execute(text("SELECT lens, gps_latitude FROM photos")).one() == (None, None)
        conn.execute(text("DELETE FROM vectors WHERE id = 7"))
        conn.execute(text("INSERT INTO vectors (photo_id, caption_id, embedder, dim, vector, created_at) VALUES (1, 1, 'e', 1, x'00000000', '2020-01-01')"))
        assert conn.execute(text("SELECT id FROM vectors")).scalar() == 8  # not 7 again


def test_write_sessions_take_the_write_lock_when_they_begin(database_url: str) -> None:
    """A writer that reads first must see what another writer committed in the meantime."""
    import threading

    from capdex.store.models import Photo

    db = Database(database_url)
    other = Database(db.url)
    events: list[str] = []
    started = threading.Event()

    def second_writer() -> None:
        started.wait(5)
        with other.session() as session:  # waits for the first writer's commit
            events.append(f"second sees {session.query(Photo).count()} photo(s)")
            session.add(Photo(content_hash="b" * 64, size=1))

    thread = threading.Thread(target=second_writer)
    thread.start()
    with db.session() as session:
        session.query(Photo).count()  # a read first, as in a check-then-write
        started.set()
        thread.join(0.5)
        assert thread.is_alive()  # blocked: the lock was taken at BEGIN
        session.add(Photo(content_hash="a" * 64, size=1))
        events.append("first committed")
    thread.join(10)
    assert events == ["first committed", "second sees 1 photo(s)"]


def test_two_processes_can_create_a_new_database_at_once(database_url: str) -> None:
    import subprocess
    import sys

    code = ("import sys; from capdex.store.db import Database; Database(sys.argv[1]).close(); print('ok')")
    url = database_url
    env = {"PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    procs = [subprocess.Popen([sys.executable, "-c", code, url], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(3)]
    results = [p.communicate(timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], [err for _, err in results]


def test_a_postgresql_store_keeps_rows_and_never_reuses_vector_ids(postgres_url: str) -> None:
    from capdex.store.models import Caption, Photo, Vector

    db = Database(postgres_url)
    with db.session() as session:
        photo = Photo(content_hash="c" * 64, size=3)
        session.add(photo)
        session.flush()
        caption = Caption(photo_id=photo.id, text="a cat", source="machine")
        session.add(caption)
        session.flush()
        first = Vector(photo_id=photo.id, caption_id=caption.id, embedder="e", dim=1,
                       vector=b"\0\0\0\0")
        session.add(first)
    with db.session() as session:
        session.delete(session.get(Vector, first.id))
    with db.session() as session:
        again = Vector(photo_id=photo.id, caption_id=caption.id, embedder="e", dim=1,
                       vector=b"\0\0\0\0")
        session.add(again)
    assert again.id > first.id
    with db.read() as session:
        assert session.get(Vector, again.id).vector == b"\0\0\0\0"
    db.close()


def test_an_unreachable_postgresql_server_is_a_clear_error() -> None:
    with pytest.raises(StoreError, match="cannot open database .*127.0.0.1:1/x") as info:
        Database("postgresql+psycopg://u:secret@127.0.0.1:1/x")
    assert "secret" not in str(info.value)
