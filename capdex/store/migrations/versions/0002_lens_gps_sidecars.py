"""lens, GPS position, XMP sidecar bookkeeping; vector ids never reused

Vector ids are FAISS ids. SQLite reuses the largest rowid after a delete unless the table is
AUTOINCREMENT, and a reused id would let a stale index file pass for current (same ids, other
vectors), so the vectors table is rebuilt with AUTOINCREMENT.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 10:00:00
"""

from alembic import op
import sqlalchemy as sa


revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("photos", schema=None) as batch_op:
        batch_op.add_column(sa.Column("lens", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("gps_latitude", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("gps_longitude", sa.Float(), nullable=True))
    with op.batch_alter_table("files", schema=None) as batch_op:
        batch_op.add_column(sa.Column("sidecar_size", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("sidecar_mtime_ns", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("xmp_written_at", sa.DateTime(timezone=True), nullable=True))
    if op.get_bind().dialect.name == "sqlite":
        with op.batch_alter_table("vectors", recreate="always",
                                  table_kwargs={"sqlite_autoincrement": True}):
            pass


def downgrade() -> None:
    with op.batch_alter_table("files", schema=None) as batch_op:
        batch_op.drop_column("xmp_written_at")
        batch_op.drop_column("sidecar_mtime_ns")
        batch_op.drop_column("sidecar_size")
    with op.batch_alter_table("photos", schema=None) as batch_op:
        batch_op.drop_column("gps_longitude")
        batch_op.drop_column("gps_latitude")
        batch_op.drop_column("lens")
