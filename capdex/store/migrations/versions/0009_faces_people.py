"""faces found in photos and the people they are grouped into (issue 14)

`faces`: per face its photo, box, detection score, 128-d descriptor (NULL once forgotten), person
and who assigned it (machine or human; a human's assignment never moves). `people`: a group of
faces, unnamed until someone names it. `face_scans`: which faces-stage version looked at a photo,
so a photo without faces is not looked at again.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05 08:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "people",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(200), nullable=True),
        sa.Column("centroid", sa.LargeBinary, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_people_name", "people", ["name"])
    op.create_table(
        "faces",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("photo_id", sa.Integer, sa.ForeignKey("photos.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("box_x", sa.Float, nullable=False),
        sa.Column("box_y", sa.Float, nullable=False),
        sa.Column("box_w", sa.Float, nullable=False),
        sa.Column("box_h", sa.Float, nullable=False),
        sa.Column("score", sa.Float, nullable=False),
        sa.Column("descriptor", sa.LargeBinary, nullable=True),
        sa.Column("person_id", sa.Integer, sa.ForeignKey("people.id", ondelete="SET NULL"),
                  nullable=True),
        sa.Column("assigned_by", sa.String(16), nullable=False),
        sa.Column("version", sa.String(200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_faces_photo_id", "faces", ["photo_id"])
    op.create_index("ix_faces_person_id", "faces", ["person_id"])
    op.create_table(
        "face_scans",
        sa.Column("photo_id", sa.Integer, sa.ForeignKey("photos.id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("version", sa.String(200), nullable=False),
        sa.Column("faces", sa.Integer, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("face_scans")
    op.drop_index("ix_faces_person_id", table_name="faces")
    op.drop_index("ix_faces_photo_id", table_name="faces")
    op.drop_table("faces")
    op.drop_index("ix_people_name", table_name="people")
    op.drop_table("people")
