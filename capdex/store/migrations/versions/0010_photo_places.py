"""where a photo was taken, by name: city, region, country from its EXIF GPS (the place stage)

One row per photo the place stage has looked at, also when it found no place (no GPS, or far
from any town): `version` (the geocoder and its GeoNames data set) says the photo is done, so a
new data set redoes places and nothing else. The names also reach keyword search as
`photo_words` of kind "place"; this table keeps them apart for the `place=` filter and the API.

Revision ID: 0010
Revises: 0008 (the lead re-chains it after 0009)
Create Date: 2026-12-05 08:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "photo_places",
        sa.Column("photo_id", sa.Integer, sa.ForeignKey("photos.id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("city", sa.String(200), nullable=True),
        sa.Column("region", sa.String(200), nullable=True),
        sa.Column("country", sa.String(200), nullable=True),
        sa.Column("country_code", sa.String(8), nullable=True),
        sa.Column("version", sa.String(200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    for column in ("city", "region", "country"):
        op.create_index(f"ix_photo_places_{column}", "photo_places", [sa.text(f"lower({column})")])


def downgrade() -> None:
    op.drop_table("photo_places")
