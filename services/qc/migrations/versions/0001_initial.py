"""QC: mirrors, judged annotations, reviews, accepted labels.

Revision ID: 0001
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from shared.inbox import create_inbox
from shared.outbox import create_outbox

revision = "0001"
down_revision = None
SCHEMA = "qc"


def _at(name: str, nullable: bool = False) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "datasets",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("slug", sa.String(63), nullable=False, unique=True),
        schema=SCHEMA,
    )
    op.create_table(
        "assets",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("dataset_id", sa.Uuid(), nullable=False, index=True),
        sa.Column("sha256", sa.String(64)),
        sa.Column("filename", sa.Text()),
        sa.Column("media_type", sa.Text()),
        sa.Column("width", sa.Integer()),
        sa.Column("height", sa.Integer()),
        schema=SCHEMA,
    )
    op.create_table(
        "ontology_versions",
        sa.Column("ontology_id", sa.Uuid(), primary_key=True),
        sa.Column("version", sa.Integer(), primary_key=True),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("classes", postgresql.ARRAY(sa.Text()), nullable=False),
        schema=SCHEMA,
    )
    op.create_table(
        "jobs",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("dataset_id", sa.Uuid(), nullable=False, index=True),
        sa.Column("ontology_id", sa.Uuid(), nullable=False),
        sa.Column("ontology_version", sa.Integer(), nullable=False),
        sa.Column("overlap", sa.Integer(), nullable=False),
        sa.Column("policy", postgresql.JSONB(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now()),
        schema=SCHEMA,
    )
    op.create_table(
        "tasks",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("job_id", sa.Uuid(), nullable=False, index=True),
        sa.Column("asset_id", sa.Uuid(), nullable=False, index=True),
        sa.Column("replica", sa.Integer(), nullable=False),
        sa.Column("gold", sa.Boolean(), nullable=False),
        sa.Column("gold_shapes", postgresql.JSONB()),
        schema=SCHEMA,
    )
    op.create_table(
        "annotations",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("task_id", sa.Uuid(), nullable=False, index=True),
        sa.Column("job_id", sa.Uuid(), nullable=False, index=True),
        sa.Column("asset_id", sa.Uuid(), nullable=False, index=True),
        sa.Column("dataset_id", sa.Uuid(), nullable=False),
        sa.Column("vendor_id", sa.Uuid(), nullable=False, index=True),
        sa.Column("annotator_id", sa.Text(), nullable=False),
        sa.Column("replica", sa.Integer(), nullable=False),
        sa.Column("gold", sa.Boolean(), nullable=False),
        sa.Column("shapes", postgresql.JSONB(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("live", sa.Boolean(), nullable=False),
        sa.Column("findings", postgresql.JSONB(), nullable=False),
        sa.Column("gold_score", postgresql.JSONB()),
        sa.Column("lead_time_seconds", sa.Float()),
        _at("received_at"),
        schema=SCHEMA,
    )
    op.create_table(
        "reviews",
        sa.Column("job_id", sa.Uuid(), primary_key=True),
        sa.Column("asset_id", sa.Uuid(), primary_key=True),
        sa.Column("dataset_id", sa.Uuid(), nullable=False, index=True),
        sa.Column("state", sa.String(16), nullable=False, index=True),
        sa.Column("round", sa.Integer(), nullable=False),
        sa.Column("reasons", postgresql.ARRAY(sa.Text()), nullable=False),
        sa.Column("agreement", sa.Float()),
        sa.Column("consensus", postgresql.JSONB()),
        sa.Column("label_set", postgresql.JSONB()),
        sa.Column("decided_by", sa.Text()),
        sa.Column("comment", sa.Text()),
        _at("first_answer_at", nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now()),
        schema=SCHEMA,
    )
    op.create_table(
        "accepted_labels",
        sa.Column("asset_id", sa.Uuid(), primary_key=True),
        sa.Column("dataset_id", sa.Uuid(), nullable=False, index=True),
        sa.Column("job_id", sa.Uuid(), nullable=False),
        sa.Column("ontology_id", sa.Uuid(), nullable=False),
        sa.Column("ontology_version", sa.Integer(), nullable=False),
        sa.Column("shapes", postgresql.JSONB(), nullable=False),
        sa.Column("annotation_ids", postgresql.ARRAY(sa.Uuid()), nullable=False),
        sa.Column("accepted_by", sa.Text(), nullable=False),
        _at("accepted_at"),
        schema=SCHEMA,
    )
    create_outbox(op, SCHEMA)
    create_inbox(op, SCHEMA)


def downgrade() -> None:
    for table in (
        "accepted_labels",
        "reviews",
        "annotations",
        "tasks",
        "jobs",
        "ontology_versions",
        "assets",
        "datasets",
    ):
        op.drop_table(table, schema=SCHEMA)
