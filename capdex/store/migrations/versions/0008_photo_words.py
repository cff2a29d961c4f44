"""words the indexing stages add to a photo (places, times, people), searchable as keywords

`photo_words` holds, per photo and kind ("place", "time", "people", ...), a line of words a stage
derived for it; `embedded` marks words that also go into the photo's vector (the vector is made
again when they change). Keyword search reads them from a new `words` column of `photo_text`:
on SQLite the FTS5 table is made again with the column and triggers on `photo_words` (the
trigger SQL repeats 0005's, as a migration must not import another); on PostgreSQL the column
joins the tsvector (weight B) and the refresh function is replaced.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04 17:30:00
"""

import logging

import sqlalchemy as sa
from alembic import op
from sqlalchemy import inspect
from sqlalchemy.exc import OperationalError

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

TABLE = "photo_text"
TOKENIZE = "porter unicode61 remove_diacritics 2"
OLD_COLUMNS = ("caption", "names", "folders", "camera", "ocr")
COLUMNS = (*OLD_COLUMNS, "words")


# --- SQLite (FTS5) -------------------------------------------------------------------------------
def insert_rows(where: str, columns: tuple[str, ...]) -> str:
    """SQL writing the `photo_text` rows of the photos matching `where` (see 0003 and 0005)."""
    folder = "rtrim(f.path, replace(f.path, '/', ''))"
    words = (",\n            coalesce((SELECT group_concat(w.text, ' ') FROM photo_words w "
             "WHERE w.photo_id = p.id), '')" if "words" in columns else "")
    return f"""
        INSERT INTO {TABLE} (rowid, {', '.join(columns)})
        SELECT p.id,
            coalesce((SELECT c.text FROM captions c WHERE c.photo_id = p.id
                      ORDER BY CASE c.source WHEN 'human' THEN 0 WHEN 'machine' THEN 1 ELSE 2 END,
                               c.id
                      LIMIT 1), ''),
            coalesce((SELECT group_concat(DISTINCT substr(f.path, length({folder}) + 1))
                      FROM files f WHERE f.photo_id = p.id), ''),
            coalesce((SELECT group_concat(DISTINCT {folder})
                      FROM files f WHERE f.photo_id = p.id), ''),
            trim(coalesce(p.camera_make, '') || ' ' || coalesce(p.camera_model, '')),
            coalesce((SELECT o.text FROM ocr_texts o WHERE o.photo_id = p.id), ''){words}
        FROM photos p
        WHERE {where} AND EXISTS (SELECT 1 FROM files f WHERE f.photo_id = p.id);"""


def triggers(columns: tuple[str, ...]) -> dict[str, str]:
    def refresh(photo_id: str) -> str:
        return (f"DELETE FROM {TABLE} WHERE rowid = {photo_id}; "
                f"{insert_rows(f'p.id = {photo_id}', columns)}")

    found = {
        "photo_text_photo_insert": f"AFTER INSERT ON photos BEGIN {refresh('NEW.id')} END",
        "photo_text_photo_update": (
            f"AFTER UPDATE OF camera_make, camera_model ON photos BEGIN {refresh('NEW.id')} END"),
        "photo_text_photo_delete": f"AFTER DELETE ON photos BEGIN "
        f"DELETE FROM {TABLE} WHERE rowid = OLD.id; END",
        "photo_text_caption_insert": f"AFTER INSERT ON captions BEGIN {refresh('NEW.photo_id')} END",
        "photo_text_caption_update": (
            f"AFTER UPDATE OF text, source, photo_id ON captions BEGIN {refresh('NEW.photo_id')} END"),
        "photo_text_caption_moved": (
            "AFTER UPDATE OF photo_id ON captions WHEN OLD.photo_id IS NOT NEW.photo_id "
            f"BEGIN {refresh('OLD.photo_id')} END"),
        "photo_text_caption_delete": f"AFTER DELETE ON captions BEGIN {refresh('OLD.photo_id')} END",
        "photo_text_file_insert": f"AFTER INSERT ON files BEGIN {refresh('NEW.photo_id')} END",
        "photo_text_file_update": (
            f"AFTER UPDATE OF path, photo_id ON files BEGIN {refresh('NEW.photo_id')} END"),
        "photo_text_file_moved": (
            "AFTER UPDATE OF photo_id ON files WHEN OLD.photo_id IS NOT NEW.photo_id "
            f"BEGIN {refresh('OLD.photo_id')} END"),
        "photo_text_file_delete": f"AFTER DELETE ON files BEGIN {refresh('OLD.photo_id')} END",
        "photo_text_ocr_insert": f"AFTER INSERT ON ocr_texts BEGIN {refresh('NEW.photo_id')} END",
        "photo_text_ocr_update": (
            f"AFTER UPDATE OF text ON ocr_texts BEGIN {refresh('NEW.photo_id')} END"),
        "photo_text_ocr_delete": f"AFTER DELETE ON ocr_texts BEGIN {refresh('OLD.photo_id')} END",
    }
    if "words" in columns:
        found |= {
            "photo_text_words_insert": (
                f"AFTER INSERT ON photo_words BEGIN {refresh('NEW.photo_id')} END"),
            "photo_text_words_update": (
                f"AFTER UPDATE OF text, photo_id ON photo_words BEGIN {refresh('NEW.photo_id')} END"),
            "photo_text_words_delete": (
                f"AFTER DELETE ON photo_words BEGIN {refresh('OLD.photo_id')} END"),
        }
    return found


def _rebuild_sqlite(old: tuple[str, ...], new: tuple[str, ...]) -> None:
    if TABLE not in inspect(op.get_bind()).get_table_names():
        return  # SQLite without FTS5: keyword search is off
    for name in triggers(old):
        op.execute(f"DROP TRIGGER IF EXISTS {name}")
    op.execute(f"DROP TABLE {TABLE}")
    try:
        op.execute(f"CREATE VIRTUAL TABLE {TABLE} USING fts5("
                   f"{', '.join(new)}, tokenize = '{TOKENIZE}')")
    except OperationalError as exc:
        logging.getLogger(__name__).warning("no keyword search: %s", exc)
        return
    for name, body in triggers(new).items():
        op.execute(f"CREATE TRIGGER {name} {body}")
    op.execute(insert_rows("1", new))


# --- PostgreSQL (tsvector, see 0006) -------------------------------------------------------------
CONFIG = "english"


def _vector(column: str, weight: str) -> str:
    words = f"regexp_replace(coalesce({column}, ''), '[^[:alnum:]]+', ' ', 'g')"
    return f"setweight(to_tsvector('{CONFIG}', unaccent({words})), '{weight}')"


def _pg_refresh(with_words: bool) -> str:
    words_value = (",\n        coalesce((SELECT string_agg(w.text, ' ' ORDER BY w.kind) "
                   "FROM photo_words w WHERE w.photo_id = p.id), '')" if with_words else "")
    words_column = ", words" if with_words else ""
    words_vector = f" || {_vector('words', 'B')}" if with_words else ""
    return f"""
CREATE OR REPLACE FUNCTION capdex_photo_text_refresh(pid integer) RETURNS void AS $$
BEGIN
    DELETE FROM {TABLE} WHERE photo_id = pid;
    INSERT INTO {TABLE} (photo_id, caption, names, folders, camera, ocr{words_column})
    SELECT p.id,
        coalesce((SELECT c.text FROM captions c WHERE c.photo_id = p.id
                  ORDER BY CASE c.source WHEN 'human' THEN 0 WHEN 'machine' THEN 1 ELSE 2 END, c.id
                  LIMIT 1), ''),
        coalesce((SELECT string_agg(DISTINCT regexp_replace(f.path, '^.*/', ''), ' ')
                  FROM files f WHERE f.photo_id = p.id), ''),
        coalesce((SELECT string_agg(DISTINCT regexp_replace(f.path, '/[^/]*$', ''), ' ')
                  FROM files f WHERE f.photo_id = p.id), ''),
        trim(coalesce(p.camera_make, '') || ' ' || coalesce(p.camera_model, '')),
        coalesce((SELECT o.text FROM ocr_texts o WHERE o.photo_id = p.id), ''){words_value}
    FROM photos p
    WHERE p.id = pid AND EXISTS (SELECT 1 FROM files f WHERE f.photo_id = p.id);
    UPDATE {TABLE} SET document = {_vector('caption', 'A')} || {_vector('names', 'B')}
        || {_vector('folders', 'C')} || {_vector('camera', 'C')} || {_vector('ocr', 'B')}{words_vector}
    WHERE photo_id = pid;
END $$ LANGUAGE plpgsql;
"""


_PG_WORDS_TRIGGER = """
CREATE OR REPLACE FUNCTION capdex_photo_text_photo_words() RETURNS trigger AS $$ BEGIN
    IF TG_OP <> 'INSERT' THEN PERFORM capdex_photo_text_refresh(OLD.photo_id); END IF;
    IF TG_OP <> 'DELETE' THEN PERFORM capdex_photo_text_refresh(NEW.photo_id); END IF;
    RETURN NULL;
END $$ LANGUAGE plpgsql"""


def upgrade() -> None:
    op.create_table(
        "photo_words",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("photo_id", sa.Integer, sa.ForeignKey("photos.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("embedded", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("version", sa.String(200), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("photo_id", "kind", name="uq_photo_words_photo_kind"),
    )
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        _rebuild_sqlite(OLD_COLUMNS, COLUMNS)
    elif dialect == "postgresql":
        op.execute(f"ALTER TABLE {TABLE} ADD COLUMN words text NOT NULL DEFAULT ''")
        op.execute(_pg_refresh(with_words=True))
        op.execute(_PG_WORDS_TRIGGER)
        op.execute("CREATE TRIGGER photo_text_photo_words AFTER INSERT OR DELETE OR UPDATE OF "
                   "text, photo_id ON photo_words FOR EACH ROW EXECUTE FUNCTION "
                   "capdex_photo_text_photo_words()")


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        _rebuild_sqlite(COLUMNS, OLD_COLUMNS)
    elif dialect == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS photo_text_photo_words ON photo_words")
        op.execute("DROP FUNCTION IF EXISTS capdex_photo_text_photo_words()")
        op.execute(_pg_refresh(with_words=False))
        op.execute(f"ALTER TABLE {TABLE} DROP COLUMN words")
    op.drop_table("photo_words")
