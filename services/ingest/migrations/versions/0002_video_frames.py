"""Frames sampled from videos are assets too: link them to their video.

Revision ID: 0002
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import UUID

revision = "0002"
down_revision = "0001"
SCHEMA = "ingest"


def upgrade() -> None:
    op.add_column("assets", sa.Column("parent_asset_id", UUID(as_uuid=True)), schema=SCHEMA)
    op.add_column("assets", sa.Column("frame_time_seconds", sa.Float), schema=SCHEMA)
    op.create_index("assets_parent", "assets", ["parent_asset_id"], schema=SCHEMA)


def downgrade() -> None:
    op.drop_index("assets_parent", "assets", schema=SCHEMA)
    op.drop_column("assets", "frame_time_seconds", schema=SCHEMA)
    op.drop_column("assets", "parent_asset_id", schema=SCHEMA)
