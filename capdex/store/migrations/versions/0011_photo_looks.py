"""what each photo looks like: the captioner's pooled image features, for "similar photos"

`photo_looks` holds one row per photo: the L2-normalised features the default tagger's forward
pass computes anyway (float16 bytes, 1280-d for EfficientNet-Lite0) and the model that made
them. Its ids are the ids of the looks FAISS index (`looks.faiss`), so, like `vectors`, the
table never reuses an id (SQLite AUTOINCREMENT).

Revision ID: 0011
Revises: 0008
Create Date: 2026-12-05 08:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "photo_looks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("photo_id", sa.Integer(), nullable=False),
        sa.Column("model", sa.String(length=300), nullable=False),
        sa.Column("dim", sa.Integer(), nullable=False),
        sa.Column("vector", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["photo_id"], ["photos.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("photo_id", name="uq_photo_looks_photo"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_photo_looks_model", "photo_looks", ["model"])


def downgrade() -> None:
    op.drop_index("ix_photo_looks_model", table_name="photo_looks")
    op.drop_table("photo_looks")
