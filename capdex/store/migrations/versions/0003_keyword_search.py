"""keyword search: an FTS5 table of each photo's words, kept in sync by triggers

One row per photo with a file (rowid = photos.id) holding its effective caption (human wins over machine),
its file names, its folder paths and its camera. Triggers on photos, captions and files rewrite
the row inside the writing transaction, so every writer (indexer, caption edits, imports) keeps
keyword search in sync without calling anything. SQLite only: other databases get no table and
`store.keyword` reports keyword search as unavailable.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22 10:00:00
"""

import logging

from alembic import op
from sqlalchemy.exc import OperationalError

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

TABLE = "photo_text"
# porter: "cats" finds "cat"; unicode61 splits on "/", ".", "_" and "-", so paths become words;
# remove_diacritics 2: "café" finds "cafe".
TOKENIZE = "porter unicode61 remove_diacritics 2"


def insert_rows(where: str) -> str:
    """SQL that writes the rows of the photos matching `where` (a condition on `p`).

    Only photos with at least one file get a row: a photo whose files are all gone is no
    search result (its captions stay, should a file return)."""
    # basename = what follows the last "/": rtrim(path, <every char but "/">) leaves the folder.
    folder = "rtrim(f.path, replace(f.path, '/', ''))"
    return f"""
        INSERT INTO {TABLE} (rowid, caption, names, folders, camera)
        SELECT p.id,
            coalesce((SELECT c.text FROM captions c WHERE c.photo_id = p.id
                      ORDER BY CASE c.source WHEN 'human' THEN 0 WHEN 'machine' THEN 1 ELSE 2 END,
                               c.id
                      LIMIT 1), ''),
            coalesce((SELECT group_concat(DISTINCT substr(f.path, length({folder}) + 1))
                      FROM files f WHERE f.photo_id = p.id), ''),
            coalesce((SELECT group_concat(DISTINCT {folder})
                      FROM files f WHERE f.photo_id = p.id), ''),
            trim(coalesce(p.camera_make, '') || ' ' || coalesce(p.camera_model, ''))
        FROM photos p
        WHERE {where} AND EXISTS (SELECT 1 FROM files f WHERE f.photo_id = p.id);"""


def refresh(photo_id: str) -> str:
    """SQL that rewrites the row of one photo from the tables (nothing if the photo is gone)."""
    return f"DELETE FROM {TABLE} WHERE rowid = {photo_id}; {insert_rows(f'p.id = {photo_id}')}"


TRIGGERS = {
    "photo_text_photo_insert": f"AFTER INSERT ON photos BEGIN {refresh('NEW.id')} END",
    "photo_text_photo_update": (
        f"AFTER UPDATE OF camera_make, camera_model ON photos BEGIN {refresh('NEW.id')} END"
    ),
    "photo_text_photo_delete": f"AFTER DELETE ON photos BEGIN "
    f"DELETE FROM {TABLE} WHERE rowid = OLD.id; END",
    "photo_text_caption_insert": f"AFTER INSERT ON captions BEGIN {refresh('NEW.photo_id')} END",
    "photo_text_caption_update": (
        f"AFTER UPDATE OF text, source, photo_id ON captions BEGIN {refresh('NEW.photo_id')} END"
    ),
    "photo_text_caption_moved": (
        "AFTER UPDATE OF photo_id ON captions WHEN OLD.photo_id IS NOT NEW.photo_id "
        f"BEGIN {refresh('OLD.photo_id')} END"
    ),
    "photo_text_caption_delete": f"AFTER DELETE ON captions BEGIN {refresh('OLD.photo_id')} END",
    "photo_text_file_insert": f"AFTER INSERT ON files BEGIN {refresh('NEW.photo_id')} END",
    "photo_text_file_update": (
        f"AFTER UPDATE OF path, photo_id ON files BEGIN {refresh('NEW.photo_id')} END"
    ),
    "photo_text_file_moved": (
        "AFTER UPDATE OF photo_id ON files WHEN OLD.photo_id IS NOT NEW.photo_id "
        f"BEGIN {refresh('OLD.photo_id')} END"
    ),
    "photo_text_file_delete": f"AFTER DELETE ON files BEGIN {refresh('OLD.photo_id')} END",
}


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return  # keyword search is SQLite FTS5 for now; store.keyword says so at query time
    try:
        op.execute(
            f"CREATE VIRTUAL TABLE {TABLE} USING fts5("
            f"caption, names, folders, camera, tokenize = '{TOKENIZE}')"
        )
    except OperationalError as exc:  # an SQLite built without FTS5: search works without it
        logging.getLogger(__name__).warning("no keyword search: %s", exc)
        return
    for name, body in TRIGGERS.items():
        op.execute(f"CREATE TRIGGER {name} {body}")
    op.execute(insert_rows("1"))  # the photos that already exist


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for name in TRIGGERS:
        op.execute(f"DROP TRIGGER IF EXISTS {name}")
    op.execute(f"DROP TABLE IF EXISTS {TABLE}")
