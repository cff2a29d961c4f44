"""keyword search on PostgreSQL: a tsvector table of each photo's words, kept in sync by triggers

The PostgreSQL twin of 0003 (SQLite FTS5): one row per photo with a file, holding its effective
caption (human wins), file names, folders, camera and the text OCR read in it (0004's
`ocr_texts`), and a weighted `document` tsvector
(English stemming, accents folded by `unaccent`) under a GIN index. Trigger functions on photos,
captions and files rewrite the row inside the writing transaction, as 0003's triggers do.
Nothing happens on SQLite.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-22 12:00:00
"""

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

TABLE = "photo_text"
CONFIG = "english"


def words(expr: str) -> str:
    """Text with every run of non-alphanumerics as one space ("IMG_0001.jpg" → "IMG 0001 jpg")."""
    return f"regexp_replace(coalesce({expr}, ''), '[^[:alnum:]]+', ' ', 'g')"


def vector(expr: str, weight: str) -> str:
    return f"setweight(to_tsvector('{CONFIG}', unaccent({words(expr)})), '{weight}')"


REFRESH = f"""
CREATE OR REPLACE FUNCTION capdex_photo_text_refresh(pid integer) RETURNS void AS $$
BEGIN
    DELETE FROM {TABLE} WHERE photo_id = pid;
    INSERT INTO {TABLE} (photo_id, caption, names, folders, camera, ocr)
    SELECT p.id,
        coalesce((SELECT c.text FROM captions c WHERE c.photo_id = p.id
                  ORDER BY CASE c.source WHEN 'human' THEN 0 WHEN 'machine' THEN 1 ELSE 2 END, c.id
                  LIMIT 1), ''),
        coalesce((SELECT string_agg(DISTINCT regexp_replace(f.path, '^.*/', ''), ' ')
                  FROM files f WHERE f.photo_id = p.id), ''),
        coalesce((SELECT string_agg(DISTINCT regexp_replace(f.path, '/[^/]*$', ''), ' ')
                  FROM files f WHERE f.photo_id = p.id), ''),
        trim(coalesce(p.camera_make, '') || ' ' || coalesce(p.camera_model, '')),
        coalesce((SELECT o.text FROM ocr_texts o WHERE o.photo_id = p.id), '')
    FROM photos p
    WHERE p.id = pid AND EXISTS (SELECT 1 FROM files f WHERE f.photo_id = p.id);
    UPDATE {TABLE} SET document = {vector('caption', 'A')} || {vector('names', 'B')}
        || {vector('folders', 'C')} || {vector('camera', 'C')} || {vector('ocr', 'B')}
    WHERE photo_id = pid;
END $$ LANGUAGE plpgsql;
"""

#: table → (trigger function body). Each refreshes the photo(s) the changed row belongs to.
TRIGGERS = {
    "photos": """
        IF TG_OP = 'DELETE' THEN DELETE FROM photo_text WHERE photo_id = OLD.id; RETURN NULL; END IF;
        PERFORM capdex_photo_text_refresh(NEW.id); RETURN NULL;""",
    "captions": """
        IF TG_OP <> 'INSERT' THEN PERFORM capdex_photo_text_refresh(OLD.photo_id); END IF;
        IF TG_OP <> 'DELETE' THEN PERFORM capdex_photo_text_refresh(NEW.photo_id); END IF;
        RETURN NULL;""",
    "files": """
        IF TG_OP <> 'INSERT' THEN PERFORM capdex_photo_text_refresh(OLD.photo_id); END IF;
        IF TG_OP <> 'DELETE' THEN PERFORM capdex_photo_text_refresh(NEW.photo_id); END IF;
        RETURN NULL;""",
    "ocr_texts": """
        IF TG_OP <> 'INSERT' THEN PERFORM capdex_photo_text_refresh(OLD.photo_id); END IF;
        IF TG_OP <> 'DELETE' THEN PERFORM capdex_photo_text_refresh(NEW.photo_id); END IF;
        RETURN NULL;""",
}
COLUMNS = {
    "photos": "INSERT OR DELETE OR UPDATE OF camera_make, camera_model",
    "captions": "INSERT OR DELETE OR UPDATE OF text, source, photo_id",
    "files": "INSERT OR DELETE OR UPDATE OF path, photo_id",
    "ocr_texts": "INSERT OR DELETE OR UPDATE OF text, photo_id",
}


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    # unaccent is a trusted extension (PostgreSQL 13+): a database owner may create it.
    op.execute("CREATE EXTENSION IF NOT EXISTS unaccent")
    op.execute(f"""CREATE TABLE {TABLE} (
        photo_id integer PRIMARY KEY REFERENCES photos(id) ON DELETE CASCADE,
        caption text NOT NULL, names text NOT NULL, folders text NOT NULL, camera text NOT NULL,
        ocr text NOT NULL DEFAULT '', document tsvector)""")
    op.execute(f"CREATE INDEX ix_{TABLE}_document ON {TABLE} USING gin (document)")
    op.execute(REFRESH)
    for table, body in TRIGGERS.items():
        op.execute(f"CREATE OR REPLACE FUNCTION capdex_photo_text_{table}() RETURNS trigger AS $$ "
                   f"BEGIN {body} END $$ LANGUAGE plpgsql")
        op.execute(f"CREATE TRIGGER photo_text_{table} AFTER {COLUMNS[table]} ON {table} "
                   f"FOR EACH ROW EXECUTE FUNCTION capdex_photo_text_{table}()")
    op.execute("SELECT capdex_photo_text_refresh(id) FROM photos")  # photos that already exist


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in TRIGGERS:
        op.execute(f"DROP TRIGGER IF EXISTS photo_text_{table} ON {table}")
        op.execute(f"DROP FUNCTION IF EXISTS capdex_photo_text_{table}()")
    op.execute("DROP FUNCTION IF EXISTS capdex_photo_text_refresh(integer)")
    op.execute(f"DROP TABLE IF EXISTS {TABLE}")
