"""Image features: the keypoints and thumbnail that verify a near-duplicate candidate.

One row per comparable image (the ones with a perceptual hash), written with its report and
read only for the few candidates a lookup proposes, so the hash table and its in-memory copy
stay as small as they were. Reports written before have no row; their candidates are decided
by the hashes alone.

Revision ID: 0005
"""

from alembic import op

revision = "0005"
down_revision = "0004"
SCHEMA = "clean"


def upgrade() -> None:
    op.execute(
        f"CREATE TABLE {SCHEMA}.image_features ("
        " asset_id uuid PRIMARY KEY,"
        " dataset_id uuid NOT NULL,"
        " features bytea NOT NULL)"
    )


def downgrade() -> None:
    op.execute(f"DROP TABLE {SCHEMA}.image_features")
