"""Dashboard: the projections of every topic, and their inbox.

Revision ID: 0001
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

from shared.inbox import create_inbox

revision = "0001"
down_revision = None
SCHEMA = "dashboard"


def _at(name: str, nullable: bool = True) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    create_inbox(op, SCHEMA)
    op.create_table(
        "datasets",
        sa.Column("dataset_id", sa.Uuid(), primary_key=True),
        sa.Column("slug", sa.String(63), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        _at("created_at"),
        schema=SCHEMA,
    )
    op.create_table(
        "assets",
        sa.Column("asset_id", sa.Uuid(), primary_key=True),
        sa.Column("dataset_id", sa.Uuid()),
        sa.Column("filename", sa.Text()),
        sa.Column("sha256", sa.String(64)),
        sa.Column("media_type", sa.Text()),
        sa.Column("size_bytes", sa.BigInteger()),
        sa.Column("source", sa.String(20)),
        sa.Column("parent_asset_id", sa.Uuid()),
        sa.Column("uploaded_by", sa.Text()),
        sa.Column("bucket", sa.Text()),
        sa.Column("object_key", sa.Text()),
        sa.Column("trace_id", sa.String(32)),
        _at("uploaded_at"),
        sa.Column("verdict", sa.String(10)),
        _at("verdict_at"),
        sa.Column("reasons", JSONB()),
        sa.Column("flags", JSONB()),
        sa.Column("metrics", JSONB()),
        sa.Column("tasks", sa.Integer(), nullable=False, server_default="0"),
        _at("first_task_at"),
        _at("first_dispatched_at"),
        sa.Column("submissions", sa.Integer(), nullable=False, server_default="0"),
        _at("first_submitted_at"),
        sa.Column("decision", sa.String(10)),
        _at("decided_at"),
        sa.Column("decided_by", sa.Text()),
        schema=SCHEMA,
    )
    op.create_table(
        "drops",
        sa.Column("event_id", sa.String(64), primary_key=True),
        sa.Column("bucket", sa.Text(), nullable=False),
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("dataset_slug", sa.Text()),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        _at("at", nullable=False),
        schema=SCHEMA,
    )
    op.create_table(
        "stage_minutes",
        sa.Column("dataset_id", sa.Uuid(), primary_key=True),
        sa.Column("stage", sa.String(20), primary_key=True),
        sa.Column("minute", sa.DateTime(timezone=True), primary_key=True),
        sa.Column("events", sa.Integer(), nullable=False),
        schema=SCHEMA,
    )
    op.create_table(
        "vendors",
        sa.Column("vendor_id", sa.Uuid(), primary_key=True),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("capacity", sa.Integer(), nullable=False),
        _at("created_at"),
        schema=SCHEMA,
    )
    op.create_table(
        "jobs",
        sa.Column("job_id", sa.Uuid(), primary_key=True),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("dataset_id", sa.Uuid(), nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        _at("created_at"),
        schema=SCHEMA,
    )
    op.create_table(
        "tasks",
        sa.Column("task_id", sa.Uuid(), primary_key=True),
        sa.Column("job_id", sa.Uuid()),
        sa.Column("asset_id", sa.Uuid()),
        sa.Column("vendor_id", sa.Uuid()),
        sa.Column("state", sa.String(12), nullable=False),
        sa.Column("gold", sa.Boolean()),
        _at("state_at", nullable=False),
        schema=SCHEMA,
    )
    op.create_table(
        "dead_letters",
        sa.Column("event_id", sa.String(64), primary_key=True),
        sa.Column("original_topic", sa.Text(), nullable=False),
        sa.Column("original_partition", sa.Integer(), nullable=False),
        sa.Column("original_offset", sa.BigInteger(), nullable=False),
        sa.Column("original_event_id", sa.Text()),
        sa.Column("original_type", sa.Text()),
        sa.Column("consumer_group", sa.Text(), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        _at("at", nullable=False),
        schema=SCHEMA,
    )
    op.create_table(
        "dataset_versions",
        sa.Column("dataset_id", sa.Uuid(), primary_key=True),
        sa.Column("version", sa.Integer(), primary_key=True),
        sa.Column("item_count", sa.Integer(), nullable=False),
        sa.Column("shape_count", sa.Integer(), nullable=False),
        sa.Column("created_by", sa.Text(), nullable=False),
        _at("created_at", nullable=False),
        schema=SCHEMA,
    )
    op.create_table(
        "progress",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("events_applied", sa.BigInteger(), nullable=False),
        _at("changed_at"),
        schema=SCHEMA,
    )
    op.execute("INSERT INTO dashboard.progress (id, events_applied) VALUES (1, 0)")
    # the funnel, charts and grids filter by dataset and time window; the asset page searches
    op.create_index(
        "assets_dataset_uploaded", "assets", ["dataset_id", "uploaded_at"], schema=SCHEMA
    )
    op.create_index("assets_uploaded", "assets", ["uploaded_at"], schema=SCHEMA)
    op.create_index("assets_verdict_at", "assets", ["verdict", "verdict_at"], schema=SCHEMA)
    op.create_index("assets_sha256", "assets", ["sha256"], schema=SCHEMA)
    op.create_index("assets_filename", "assets", [sa.text("lower(filename)")], schema=SCHEMA)
    op.create_index("stage_minutes_minute", "stage_minutes", ["minute"], schema=SCHEMA)
    op.create_index("tasks_state", "tasks", ["state", "vendor_id"], schema=SCHEMA)
    op.create_index("dead_letters_at", "dead_letters", ["at"], schema=SCHEMA)


def downgrade() -> None:
    for table in (
        "progress",
        "dataset_versions",
        "dead_letters",
        "tasks",
        "jobs",
        "vendors",
        "stage_minutes",
        "drops",
        "assets",
        "datasets",
        "inbox",
    ):
        op.drop_table(table, schema=SCHEMA)
