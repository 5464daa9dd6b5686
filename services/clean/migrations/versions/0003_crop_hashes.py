"""Crop hashes: the pHashes of 18 sub-regions of each image, for crop-robust near duplicates.

Stored as 18 big-endian 64-bit values in one ``bytea`` (144 bytes), present exactly when the
full hash is. Reports written before have no crop hashes; they get their full hash repeated,
which never matches through the crop check (that distance is the full distance).

Revision ID: 0003
"""

from alembic import op

revision = "0003"
down_revision = "0002"
SCHEMA = "clean"


def upgrade() -> None:
    table = f"{SCHEMA}.quality_reports"
    op.execute(f"ALTER TABLE {table} ADD COLUMN crop_hashes bytea")
    op.execute(
        "UPDATE clean.quality_reports"
        " SET crop_hashes = decode(repeat(lpad(to_hex(phash), 16, '0'), 18), 'hex')"
        " WHERE phash IS NOT NULL"
    )
    op.execute(
        f"ALTER TABLE {table} ADD CONSTRAINT quality_reports_crop_hashes CHECK ("
        "(phash IS NULL AND crop_hashes IS NULL) OR octet_length(crop_hashes) = 144)"
    )


def downgrade() -> None:
    table = f"{SCHEMA}.quality_reports"
    op.execute(f"ALTER TABLE {table} DROP COLUMN crop_hashes")
