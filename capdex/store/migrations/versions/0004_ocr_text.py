"""text in photos (OCR): one row per photo; vectors record the OCR text embedded with the caption

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22 01:20:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ocr_texts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("photo_id", sa.Integer(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("confidence", sa.Float(), nullable=True),
        sa.Column("engine", sa.String(length=100), nullable=False),
        sa.Column("engine_version", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["photo_id"], ["photos.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("photo_id"),
    )
    if op.get_bind().dialect.name != "sqlite":  # ALTER TABLE can add a column with its key
        op.add_column("vectors", sa.Column("ocr_id", sa.Integer(), nullable=True))
        op.create_foreign_key("fk_vectors_ocr_id_ocr_texts", "vectors", "ocr_texts", ["ocr_id"],
                              ["id"], ondelete="CASCADE")
        return
    # Recreated (SQLite) keeping AUTOINCREMENT: FAISS ids must never be reused (see 0002).
    with op.batch_alter_table("vectors", recreate="always",
                              table_kwargs={"sqlite_autoincrement": True}) as batch_op:
        batch_op.add_column(sa.Column("ocr_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key("fk_vectors_ocr_id_ocr_texts", "ocr_texts", ["ocr_id"], ["id"],
                                    ondelete="CASCADE")


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        op.drop_constraint("fk_vectors_ocr_id_ocr_texts", "vectors", type_="foreignkey")
        op.drop_column("vectors", "ocr_id")
        op.drop_table("ocr_texts")
        return
    with op.batch_alter_table("vectors", recreate="always",
                              table_kwargs={"sqlite_autoincrement": True}) as batch_op:
        batch_op.drop_constraint("fk_vectors_ocr_id_ocr_texts", type_="foreignkey")
        batch_op.drop_column("ocr_id")
    op.drop_table("ocr_texts")
