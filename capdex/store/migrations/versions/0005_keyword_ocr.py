"""keyword search covers the text photos show (OCR): `photo_text` gains an `ocr` column

For the search branch's keyword search (FTS5 table `photo_text`, made with its triggers by its
migration `0003_keyword_search`): it runs after that one. Where
there is no `photo_text` table (no keyword search yet, or SQLite without FTS5) it does nothing.
FTS5 tables cannot gain a column, so the table and its triggers are made again (with the rows of
the photos that exist), plus triggers on `ocr_texts` keeping the new column in sync. The
trigger SQL repeats 0003's (a migration must not import another), with the `ocr` column added;
`store/keyword.py` then lists "ocr" in COLUMNS (with a BM25 weight).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22 02:00:00
"""

import logging

from alembic import op
from sqlalchemy import inspect
from sqlalchemy.exc import OperationalError

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

TABLE = "photo_text"
TOKENIZE = "porter unicode61 remove_diacritics 2"
OLD_COLUMNS = ("caption", "names", "folders", "camera")
COLUMNS = (*OLD_COLUMNS, "ocr")


def insert_rows(where: str, columns: tuple[str, ...] = COLUMNS) -> str:
    """SQL writing the rows of the photos matching `where` (see 0003_keyword_search)."""
    folder = "rtrim(f.path, replace(f.path, '/', ''))"
    ocr = (",\n            coalesce((SELECT o.text FROM ocr_texts o WHERE o.photo_id = p.id), '')"
           if "ocr" in columns else "")
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
            trim(coalesce(p.camera_make, '') || ' ' || coalesce(p.camera_model, '')){ocr}
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
    }
    if "ocr" in columns:
        found |= {
            "photo_text_ocr_insert": f"AFTER INSERT ON ocr_texts BEGIN {refresh('NEW.photo_id')} END",
            "photo_text_ocr_update": (
                f"AFTER UPDATE OF text ON ocr_texts BEGIN {refresh('NEW.photo_id')} END"),
            "photo_text_ocr_delete": f"AFTER DELETE ON ocr_texts BEGIN {refresh('OLD.photo_id')} END",
        }
    return found


def _rebuild(old: tuple[str, ...], new: tuple[str, ...]) -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    if TABLE not in inspect(op.get_bind()).get_table_names():
        return  # SQLite without FTS5: 0002 made no table, keyword search is off
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


def upgrade() -> None:
    _rebuild(OLD_COLUMNS, COLUMNS)


def downgrade() -> None:
    _rebuild(COLUMNS, OLD_COLUMNS)
