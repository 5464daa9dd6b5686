"""Labeling dispatch: mirrors, ontologies, vendors, jobs, tasks, deliveries, annotations.

Revision ID: 0001
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from shared.inbox import create_inbox
from shared.outbox import create_outbox

revision = "0001"
down_revision = None
SCHEMA = "labeling"


def upgrade() -> None:
    op.create_table(
        "assets",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("dataset_id", sa.Uuid(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=True),
        sa.Column("media_type", sa.Text(), nullable=True),
        sa.Column("filename", sa.Text(), nullable=True),
        sa.Column("width", sa.Integer(), nullable=True),
        sa.Column("height", sa.Integer(), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("cleaned_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("traceparent", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        schema="labeling",
    )
    op.create_table(
        "datasets",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("slug", sa.String(length=63), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("slug"),
        schema="labeling",
    )
    op.create_table(
        "ontologies",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("latest_version", sa.Integer(), nullable=False),
        sa.Column("created_by", sa.Text(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
        schema="labeling",
    )
    op.create_table(
        "predictions",
        sa.Column("asset_id", sa.Uuid(), nullable=False),
        sa.Column("model", sa.String(length=128), nullable=False),
        sa.Column("shapes", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("margin", sa.Float(), nullable=True),
        sa.Column("created_by", sa.Text(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("asset_id", "model"),
        schema="labeling",
    )
    op.create_table(
        "refused_requests",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("vendor_id", sa.Uuid(), nullable=True),
        sa.Column("task_id", sa.Uuid(), nullable=True),
        sa.Column("delivery_id", sa.String(length=128), nullable=True),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=False),
        sa.Column("problems", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column(
            "received_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id"),
        schema="labeling",
    )
    op.create_table(
        "vendors",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("url", sa.Text(), nullable=True),
        sa.Column("capacity", sa.Integer(), nullable=False),
        sa.Column("batch_size", sa.Integer(), nullable=False),
        sa.Column("config", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("api_key_hash", sa.String(length=64), nullable=False),
        sa.Column("secret", sa.Text(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_by", sa.Text(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("api_key_hash"),
        sa.UniqueConstraint("name"),
        schema="labeling",
    )
    op.create_table(
        "webhook_receipts",
        sa.Column("vendor_id", sa.Uuid(), nullable=False),
        sa.Column("delivery_id", sa.String(length=128), nullable=False),
        sa.Column(
            "received_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("response", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.PrimaryKeyConstraint("vendor_id", "delivery_id"),
        schema="labeling",
    )
    op.create_table(
        "jobs",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("dataset_id", sa.Uuid(), nullable=False),
        sa.Column("ontology_id", sa.Uuid(), nullable=False),
        sa.Column("ontology_version", sa.Integer(), nullable=False),
        sa.Column("overlap", sa.Integer(), nullable=False),
        sa.Column("gold_ratio", sa.Float(), nullable=False),
        sa.Column("priority", sa.String(length=16), nullable=False),
        sa.Column("lease_seconds", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("regular_tasks", sa.Integer(), nullable=False),
        sa.Column("gold_tasks", sa.Integer(), nullable=False),
        sa.Column("created_by", sa.Text(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["ontology_id"],
            ["labeling.ontologies.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        schema="labeling",
    )
    op.create_table(
        "ontology_versions",
        sa.Column("ontology_id", sa.Uuid(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("spec", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("created_by", sa.Text(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["ontology_id"],
            ["labeling.ontologies.id"],
        ),
        sa.PrimaryKeyConstraint("ontology_id", "version"),
        schema="labeling",
    )
    op.create_table(
        "deliveries",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("vendor_id", sa.Uuid(), nullable=False),
        sa.Column("job_id", sa.Uuid(), nullable=False),
        sa.Column("task_ids", postgresql.ARRAY(sa.UUID()), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_status_code", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("last_latency_ms", sa.Float(), nullable=True),
        sa.Column("traceparent", sa.Text(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["job_id"],
            ["labeling.jobs.id"],
        ),
        sa.ForeignKeyConstraint(
            ["vendor_id"],
            ["labeling.vendors.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        schema="labeling",
    )
    op.create_table(
        "gold_items",
        sa.Column("job_id", sa.Uuid(), nullable=False),
        sa.Column("asset_id", sa.Uuid(), nullable=False),
        sa.Column("shapes", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("uses", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["job_id"],
            ["labeling.jobs.id"],
        ),
        sa.PrimaryKeyConstraint("job_id", "asset_id"),
        schema="labeling",
    )
    op.create_table(
        "job_vendors",
        sa.Column("job_id", sa.Uuid(), nullable=False),
        sa.Column("vendor_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["job_id"],
            ["labeling.jobs.id"],
        ),
        sa.ForeignKeyConstraint(
            ["vendor_id"],
            ["labeling.vendors.id"],
        ),
        sa.PrimaryKeyConstraint("job_id", "vendor_id"),
        schema="labeling",
    )
    op.create_table(
        "tasks",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("job_id", sa.Uuid(), nullable=False),
        sa.Column("asset_id", sa.Uuid(), nullable=False),
        sa.Column("replica", sa.Integer(), nullable=False),
        sa.Column("gold", sa.Boolean(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("priority_score", sa.Float(), nullable=False),
        sa.Column("vendor_id", sa.Uuid(), nullable=True),
        sa.Column("excluded_vendors", postgresql.ARRAY(sa.UUID()), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("delivery_id", sa.Uuid(), nullable=True),
        sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("rework_comment", sa.Text(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("dispatched_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["job_id"],
            ["labeling.jobs.id"],
        ),
        sa.ForeignKeyConstraint(
            ["vendor_id"],
            ["labeling.vendors.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        schema="labeling",
    )
    op.create_table(
        "annotations",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("task_id", sa.Uuid(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("vendor_id", sa.Uuid(), nullable=False),
        sa.Column("annotator_id", sa.Text(), nullable=False),
        sa.Column("shapes", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("delivery_id", sa.String(length=128), nullable=True),
        sa.Column("vendor_submitted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "received_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("lead_time_seconds", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(
            ["task_id"],
            ["labeling.tasks.id"],
        ),
        sa.ForeignKeyConstraint(
            ["vendor_id"],
            ["labeling.vendors.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        schema="labeling",
    )
    op.create_table(
        "assignments",
        sa.Column("task_id", sa.Uuid(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("vendor_id", sa.Uuid(), nullable=False),
        sa.Column("delivery_id", sa.Uuid(), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column(
            "assigned_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("dispatched_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["task_id"],
            ["labeling.tasks.id"],
        ),
        sa.ForeignKeyConstraint(
            ["vendor_id"],
            ["labeling.vendors.id"],
        ),
        sa.PrimaryKeyConstraint("task_id", "attempt"),
        schema="labeling",
    )
    op.create_table(
        "delivery_attempts",
        sa.Column("delivery_id", sa.Uuid(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column(
            "attempted_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("latency_ms", sa.Float(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("manual", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["delivery_id"],
            ["labeling.deliveries.id"],
        ),
        sa.PrimaryKeyConstraint("delivery_id", "attempt"),
        schema="labeling",
    )
    op.create_index(
        op.f("ix_labeling_assets_dataset_id"),
        "assets",
        ["dataset_id"],
        unique=False,
        schema="labeling",
    )
    op.create_index(
        op.f("ix_labeling_refused_requests_task_id"),
        "refused_requests",
        ["task_id"],
        unique=False,
        schema="labeling",
    )
    op.create_index(
        op.f("ix_labeling_refused_requests_vendor_id"),
        "refused_requests",
        ["vendor_id"],
        unique=False,
        schema="labeling",
    )
    op.create_index(
        op.f("ix_labeling_jobs_dataset_id"), "jobs", ["dataset_id"], unique=False, schema="labeling"
    )
    op.create_index(
        op.f("ix_labeling_deliveries_job_id"),
        "deliveries",
        ["job_id"],
        unique=False,
        schema="labeling",
    )
    op.create_index(
        op.f("ix_labeling_deliveries_next_attempt_at"),
        "deliveries",
        ["next_attempt_at"],
        unique=False,
        schema="labeling",
    )
    op.create_index(
        op.f("ix_labeling_deliveries_status"),
        "deliveries",
        ["status"],
        unique=False,
        schema="labeling",
    )
    op.create_index(
        op.f("ix_labeling_deliveries_vendor_id"),
        "deliveries",
        ["vendor_id"],
        unique=False,
        schema="labeling",
    )
    op.create_index(
        op.f("ix_labeling_tasks_asset_id"), "tasks", ["asset_id"], unique=False, schema="labeling"
    )
    op.create_index(
        op.f("ix_labeling_tasks_job_id"), "tasks", ["job_id"], unique=False, schema="labeling"
    )
    op.create_index(
        op.f("ix_labeling_annotations_task_id"),
        "annotations",
        ["task_id"],
        unique=False,
        schema="labeling",
    )
    op.create_index(
        op.f("ix_labeling_annotations_vendor_id"),
        "annotations",
        ["vendor_id"],
        unique=False,
        schema="labeling",
    )
    op.create_index(
        op.f("ix_labeling_assignments_delivery_id"),
        "assignments",
        ["delivery_id"],
        unique=False,
        schema="labeling",
    )
    op.create_index(
        op.f("ix_labeling_assignments_vendor_id"),
        "assignments",
        ["vendor_id"],
        unique=False,
        schema="labeling",
    )
    # The dispatcher's question: the next queued tasks of a job, best priority first.
    op.create_index(
        "tasks_queued",
        "tasks",
        ["job_id", "priority_score"],
        schema=SCHEMA,
        postgresql_where=sa.text("state = 'queued'"),
    )
    # The lease sweeper's question: dispatched tasks whose lease has run out.
    op.create_index(
        "tasks_leases",
        "tasks",
        ["lease_expires_at"],
        schema=SCHEMA,
        postgresql_where=sa.text("state = 'dispatched'"),
    )
    op.execute(
        f"""
        CREATE FUNCTION {SCHEMA}.refuse_ontology_change() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'ontology versions are immutable: % refused', TG_OP
                USING ERRCODE = 'insufficient_privilege';
        END $$;
        """
    )
    op.execute(
        f"""
        CREATE TRIGGER ontology_versions_immutable
        BEFORE UPDATE OR DELETE ON {SCHEMA}.ontology_versions
        FOR EACH ROW EXECUTE FUNCTION {SCHEMA}.refuse_ontology_change();
        """
    )
    create_outbox(op, SCHEMA)
    create_inbox(op, SCHEMA)


def downgrade() -> None:
    raise NotImplementedError("labeling dispatch is not downgraded")
