"""Video signatures: the per-video samples duplicate-video detection compares.

One row per video with a fingerprint (``checks.video.fingerprint.VideoSignature.pack``: per
sample its time in milliseconds, a 64-bit hash and 64 block means, 76 bytes), with the
report's arrival so each clean process's in-memory copy reads only what is newer. A duplicate
video's shared footage (its time range and the original's) is kept with its report in
``quality_reports.duplicate_overlap``. Videos stored before have no row and are not compared.

Revision ID: 0006
"""

from alembic import op

revision = "0006"
down_revision = "0005"
SCHEMA = "clean"


def upgrade() -> None:
    op.execute(
        f"CREATE TABLE {SCHEMA}.video_signatures ("
        " asset_id uuid PRIMARY KEY,"
        " dataset_id uuid NOT NULL,"
        " arrival bigint NOT NULL,"
        " duration_seconds double precision NOT NULL,"
        " samples bytea NOT NULL)"
    )
    op.execute(
        f"CREATE INDEX video_signatures_dataset_arrival"
        f" ON {SCHEMA}.video_signatures (dataset_id, arrival)"
    )
    op.execute(f"ALTER TABLE {SCHEMA}.quality_reports ADD COLUMN duplicate_overlap jsonb")


def downgrade() -> None:
    op.execute(f"ALTER TABLE {SCHEMA}.quality_reports DROP COLUMN duplicate_overlap")
    op.execute(f"DROP TABLE {SCHEMA}.video_signatures")
