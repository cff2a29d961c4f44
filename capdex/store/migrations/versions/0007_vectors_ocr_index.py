"""an index on `vectors.ocr_id`

Every index run asks which vectors embedded an OCR row whose text is now empty
(`indexer.ocr.drop_stale_vectors`), and deleting or replacing an OCR row cascades to the vectors
that point at it; without an index both read the whole vectors table (1.5 KB a row), about
0.1 s per 100,000 photos on every unchanged re-run.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-22 03:30:00
"""

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_vectors_ocr_id", "vectors", ["ocr_id"])


def downgrade() -> None:
    op.drop_index("ix_vectors_ocr_id", table_name="vectors")
