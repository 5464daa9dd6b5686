"""Label Studio vendors: their projects, and annotation versions.

A ``label_studio`` vendor gets one Label Studio project per job and pass (replica); the
project row keeps the webhook registered on it and the reconcile cursor. Annotations made in
Label Studio can be changed or deleted after submission, so a stored annotation now has a
version, the Label Studio annotation it came from (``vendor_ref``), the version it replaces,
and when it was withdrawn (deleted in the tool).

Revision ID: 0003
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0003"
down_revision = "0002"
SCHEMA = "labeling"


def upgrade() -> None:
    op.create_table(
        "label_studio_projects",
        sa.Column(
            "vendor_id",
            postgresql.UUID(as_uuid=True),
            sa.ForeignKey(f"{SCHEMA}.vendors.id"),
            primary_key=True,
        ),
        sa.Column(
            "job_id",
            postgresql.UUID(as_uuid=True),
            sa.ForeignKey(f"{SCHEMA}.jobs.id"),
            primary_key=True,
        ),
        sa.Column("pass_no", sa.Integer, primary_key=True),
        sa.Column("project_id", sa.Integer, nullable=False),
        sa.Column("webhook_id", sa.Integer),
        sa.Column("synced_until", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        schema=SCHEMA,
    )
    op.add_column(
        "annotations",
        sa.Column("version", sa.Integer, nullable=False, server_default="1"),
        schema=SCHEMA,
    )
    op.add_column("annotations", sa.Column("vendor_ref", sa.Text), schema=SCHEMA)
    op.add_column(
        "annotations", sa.Column("supersedes", postgresql.UUID(as_uuid=True)), schema=SCHEMA
    )
    op.add_column(
        "annotations", sa.Column("withdrawn_at", sa.DateTime(timezone=True)), schema=SCHEMA
    )
    op.create_index(
        "annotations_by_vendor_ref",
        "annotations",
        ["vendor_id", "vendor_ref"],
        schema=SCHEMA,
        postgresql_where=sa.text("vendor_ref IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("annotations_by_vendor_ref", table_name="annotations", schema=SCHEMA)
    for column in ("withdrawn_at", "supersedes", "vendor_ref", "version"):
        op.drop_column("annotations", column, schema=SCHEMA)
    op.drop_table("label_studio_projects", schema=SCHEMA)
