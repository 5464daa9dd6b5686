"""Re-analysis jobs, and where each report's file is.

``quality_reports.ingested`` keeps the asset.ingested payload a report was made from (bucket,
object key, size, media type, dataset slug), so a re-analysis can read the file again without
asking ingest. Reports written before this revision have none: a re-analysis counts them as
failed (``no_stored_source``) until `conveyor quality backfill-sources` copies their sources from
the audit trail; see docs/cleaning.md, "Re-analysis".

``reanalyses`` is one job per row, its progress checkpointed by arrival; the partial unique
index allows one queued or running job per dataset.

Revision ID: 0004
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB, UUID

revision = "0004"
down_revision = "0003"
SCHEMA = "clean"


def upgrade() -> None:
    now = sa.func.now()
    op.execute(f"ALTER TABLE {SCHEMA}.quality_reports ADD COLUMN ingested jsonb")
    op.create_table(
        "reanalyses",
        sa.Column("id", UUID(as_uuid=True), primary_key=True),
        sa.Column("dataset_id", UUID(as_uuid=True), nullable=False),
        sa.Column("dataset_slug", sa.String(63), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("rejudge", sa.Boolean, nullable=False),
        sa.Column("requested_by", sa.Text, nullable=False),
        sa.Column("total", sa.Integer, nullable=False),
        sa.Column("done", sa.Integer, nullable=False, server_default="0"),
        sa.Column("failed", sa.Integer, nullable=False, server_default="0"),
        sa.Column("changed", sa.Integer, nullable=False, server_default="0"),
        sa.Column("last_arrival", sa.BigInteger, nullable=False),
        sa.Column("until_arrival", sa.BigInteger, nullable=False),
        sa.Column("failures", JSONB, nullable=False, server_default="[]"),
        sa.Column("error", sa.Text),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=now),
        sa.Column("started_at", sa.DateTime(timezone=True)),
        sa.Column("resumed_at", sa.DateTime(timezone=True)),
        sa.Column("processed_at_resume", sa.Integer, nullable=False, server_default="0"),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=now),
        schema=SCHEMA,
    )
    op.execute(
        f"CREATE UNIQUE INDEX reanalyses_one_active ON {SCHEMA}.reanalyses (dataset_id)"
        " WHERE state IN ('queued', 'running')"
    )
    op.execute(
        f"CREATE INDEX reanalyses_by_dataset ON {SCHEMA}.reanalyses"
        " (dataset_id, created_at DESC, id DESC)"
    )


def downgrade() -> None:
    op.drop_table("reanalyses", schema=SCHEMA)
    op.execute(f"ALTER TABLE {SCHEMA}.quality_reports DROP COLUMN ingested")
