"""Crop hashes: 43 sub-regions for new reports, the 18 of before still accepted.

16 regions keeping 85 % of each side and 9 keeping 80 % (``checks.fingerprint.CROP_REGIONS``)
follow the 18 kept before, so new reports store 43 big-endian values (344 bytes). Reports
stored before keep their 18 (144 bytes): nothing is rewritten, and the in-memory copy pads them
with their full hash on reading (``repository.hashes_since``), which never brings a pair closer
than the full hash does.

Revision ID: 0007
"""

from alembic import op

revision = "0007"
down_revision = "0006"
SCHEMA = "clean"


def upgrade() -> None:
    table = f"{SCHEMA}.quality_reports"
    op.execute(f"ALTER TABLE {table} DROP CONSTRAINT quality_reports_crop_hashes")
    op.execute(
        f"ALTER TABLE {table} ADD CONSTRAINT quality_reports_crop_hashes CHECK ("
        "(phash IS NULL AND crop_hashes IS NULL) OR octet_length(crop_hashes) IN (144, 344))"
    )


def downgrade() -> None:
    table = f"{SCHEMA}.quality_reports"
    op.execute(f"ALTER TABLE {table} DROP CONSTRAINT quality_reports_crop_hashes")
    op.execute(
        "UPDATE clean.quality_reports SET crop_hashes = substring(crop_hashes FROM 1 FOR 144)"
    )
    op.execute(
        f"ALTER TABLE {table} ADD CONSTRAINT quality_reports_crop_hashes CHECK ("
        "(phash IS NULL AND crop_hashes IS NULL) OR octet_length(crop_hashes) = 144)"
    )
