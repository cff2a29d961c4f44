"""Opening the database: engine, sessions, SQLite pragmas, and migrations to the latest schema.

SQLite (one machine, the default) and PostgreSQL (`CAPDEX_DATABASE_URL=postgresql+psycopg://...`,
for several users or a cluster's results) share the models and the migrations; only how a
writer serialises with other writers differs (see `_sqlite_begin`, `migrate`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine, create_engine, event, inspect, text
from sqlalchemy.orm import Session, sessionmaker

if TYPE_CHECKING:
    import sqlite3

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


class StoreError(RuntimeError):
    """The database cannot be opened or used; the message says why."""


#: Execution option marking connections that will write: they BEGIN IMMEDIATE on SQLite.
WRITE_OPTION = "capdex_write"


def _sqlite_pragmas(dbapi_connection: sqlite3.Connection, _record: object) -> None:
    # SQLAlchemy, not the sqlite3 module, decides when transactions begin (see _sqlite_begin).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    # WAL lets searches read while an indexer writes; NORMAL sync is durable at checkpoints
    # and never corrupts in WAL mode. busy_timeout makes writers wait instead of failing.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def _sqlite_begin(connection: Connection) -> None:
    """Writers take SQLite's write lock when their transaction starts, not at their first write.

    Several processes write one database (indexer, watch, the server storing a human caption).
    A writer that first reads ("has this photo a human caption?") and then writes must not act
    on what another writer changed in between; with BEGIN IMMEDIATE the second writer waits
    (busy_timeout) and then reads the committed state. Readers use a plain BEGIN, which in WAL
    mode never blocks and never is blocked.
    """
    write = connection.get_execution_options().get(WRITE_OPTION, False)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


#: PostgreSQL advisory lock key held by every write transaction ("capdexw" in ASCII).
_WRITE_LOCK_KEY = 0x63617064657877


def _postgres_begin(connection: Connection) -> None:
    """Writers serialise on PostgreSQL as on SQLite (one writer at a time, from BEGIN on).

    capdex's writers read before they write ("has this photo a human caption?"); under READ
    COMMITTED two of them could act on the same stale read. A transaction-scoped advisory lock
    taken at the start of each write transaction gives the guarantee `_sqlite_begin` gives;
    readers take no lock.
    """
    if connection.get_execution_options().get(WRITE_OPTION, False):
        connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_WRITE_LOCK_KEY})")


def make_engine(url: str) -> Engine:
    """An engine for `url`, with the SQLite settings capdex relies on."""
    if url.startswith("sqlite"):
        database = url.split("///", 1)[-1]
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    engine = create_engine(url, pool_pre_ping=True)
    if engine.dialect.name == "postgresql":
        # "begin" fires before the transaction's first statement; the lock then is its first.
        event.listen(engine, "begin", _postgres_begin)
    return engine


_REVISION = re.compile(r"""^(down_revision|revision)\s*(?::[^=]*)?=\s*['"]?([\w.-]+|None)['"]?""",
                       re.MULTILINE)


def _head_without_alembic() -> str | None:
    """The single head revision read straight from the migration files, or None when that is
    not clear-cut (then Alembic decides). Importing Alembic costs ~0.3 s of every CLI start."""
    revisions, parents = set(), set()
    for path in (MIGRATIONS_DIR / "versions").glob("*.py"):
        found = {m[1]: m[2] for m in _REVISION.finditer(path.read_text(encoding="utf-8"))}
        if "revision" not in found or "down_revision" not in found:
            return None
        revisions.add(found["revision"])
        parents.add(found["down_revision"])
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 else None


def _is_current(engine: Engine) -> bool:
    """Whether the database is already at the head revision (checked without Alembic)."""
    head = _head_without_alembic()
    if head is None:
        return False
    with engine.connect() as connection:
        if not inspect(connection).has_table("alembic_version"):
            return False
        current = connection.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    return current == [head]


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest Alembic revision (no-op when already there)."""
    if _is_current(engine):
        return
    from alembic import command
    from alembic.config import Config
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    head = ScriptDirectory.from_config(config).get_current_head()
    with engine.connect() as connection:
        if MigrationContext.configure(connection).get_current_revision() == head:
            return
    # One transaction holding the write lock: a second process opening a new database at the
    # same moment waits, then finds the schema current (DDL is transactional on SQLite and
    # PostgreSQL alike; on PostgreSQL the write lock is `_postgres_begin`'s advisory lock).
    with engine.execution_options(**{WRITE_OPTION: True}).begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def _migrate_waiting(engine: Engine, wait: float = 30.0) -> None:
    """`migrate`, waiting out SQLite's "database is locked" for up to `wait` seconds.

    While another process creates a new SQLite database (switching it to WAL, migrating), a
    connection can get SQLITE_BUSY without its busy timeout applying; two `capdex index` runs
    started together on a new data dir then failed at open instead of the second one being
    told another run holds the library (seen as a rare failure of
    tests/indexer/test_crash.py::test_two_indexers_at_once_never_corrupt_the_store).
    """
    import time

    from sqlalchemy.exc import OperationalError

    deadline = time.monotonic() + wait
    while True:
        try:
            migrate(engine)
            return
        except OperationalError as exc:
            if "database is locked" not in str(exc) or time.monotonic() > deadline:
                raise
            engine.dispose()
            time.sleep(0.1)


class Database:
    """The engine and a session factory for one database URL, migrated on open."""

    def __init__(self, url: str) -> None:
        self.url = url
        try:
            self.engine = make_engine(url)
            _migrate_waiting(self.engine)
        except Exception as exc:  # turn any driver error into one clear message
            raise StoreError(f"cannot open database {_redact(url)}: {exc}") from exc
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._writers = sessionmaker(
            self.engine.execution_options(**{WRITE_OPTION: True}), expire_on_commit=False
        )

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A write session: its transaction holds the write lock from the start (see
        `_sqlite_begin`), commits on success and rolls back on error."""
        with self._writers() as session, session.begin():
            yield session

    def read(self) -> Session:
        """A plain session for reading (caller closes it, e.g. with `with`)."""
        return self._sessions()

    def close(self) -> None:
        self.engine.dispose()


def _redact(url: str) -> str:
    """Hide a password in a database URL."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001
        return "<unparseable url>"
