"""Quality reports, the perceptual-hash multi-index, policies, outbox and inbox.

Revision ID: 0001
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB, UUID

from shared.inbox import create_inbox
from shared.outbox import create_outbox

revision = "0001"
down_revision = None
SCHEMA = "clean"


def upgrade() -> None:
    now = sa.func.now()
    op.create_table(
        "datasets",
        sa.Column("id", UUID(as_uuid=True), primary_key=True),
        sa.Column("slug", sa.String(63), nullable=False, unique=True),
        schema=SCHEMA,
    )
    op.create_table(
        "policies",
        sa.Column("dataset_id", UUID(as_uuid=True), primary_key=True),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("rules", JSONB, nullable=False),
        sa.Column("updated_by", sa.Text, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=now),
        schema=SCHEMA,
    )
    op.execute(f"CREATE SEQUENCE {SCHEMA}.arrival_seq")
    op.create_table(
        "quality_reports",
        sa.Column("asset_id", UUID(as_uuid=True), primary_key=True),
        sa.Column("dataset_id", UUID(as_uuid=True), nullable=False, index=True),
        sa.Column("media_type", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("metrics", JSONB, nullable=False),
        sa.Column("structural", JSONB, nullable=False),
        sa.Column("reasons", JSONB, nullable=False),
        sa.Column("flags", JSONB, nullable=False),
        sa.Column("pixel_sha256", sa.String(64)),
        sa.Column("phash", sa.BigInteger),
        sa.Column("duplicate_of", UUID(as_uuid=True)),
        sa.Column("duplicate_code", sa.String(32)),
        sa.Column("duplicate_distance", sa.SmallInteger),
        sa.Column("policy_version", sa.Integer, nullable=False),
        sa.Column("arrival", sa.BigInteger, nullable=False, index=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=now),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=now),
        schema=SCHEMA,
    )
    op.create_index(
        "quality_reports_pixels", "quality_reports", ["dataset_id", "pixel_sha256"], schema=SCHEMA
    )
    op.create_table(
        "phash_bands",
        sa.Column("dataset_id", UUID(as_uuid=True), primary_key=True),
        sa.Column("band", sa.SmallInteger, primary_key=True),
        sa.Column("value", sa.Integer, primary_key=True),
        sa.Column("asset_id", UUID(as_uuid=True), primary_key=True),
        sa.Column("phash", sa.BigInteger, nullable=False),
        sa.Column("arrival", sa.BigInteger, nullable=False),
        schema=SCHEMA,
    )
    create_outbox(op, SCHEMA)
    create_inbox(op, SCHEMA)


def downgrade() -> None:
    raise NotImplementedError("the initial schema is not downgraded; drop the schema instead")
