"""QC: frozen dataset versions, their items, and exports of them.

A version's items are copies (not references) of the accepted labels and asset facts at the
moment it was frozen, so a later acceptance never changes an old version or its exports.

Revision ID: 0003
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0003"
down_revision = "0002"
SCHEMA = "qc"


def upgrade() -> None:
    op.create_table(
        "dataset_versions",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("dataset_id", sa.Uuid(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("manifest_hash", sa.String(64), nullable=False),
        sa.Column("item_count", sa.Integer(), nullable=False),
        sa.Column("shape_count", sa.Integer(), nullable=False),
        sa.Column("left_out", sa.Integer(), nullable=False),
        sa.Column("classes", postgresql.ARRAY(sa.Text()), nullable=False),
        sa.Column("created_by", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("dataset_id", "number", name="dataset_versions_number"),
        sa.UniqueConstraint("dataset_id", "manifest_hash", name="dataset_versions_hash"),
        schema=SCHEMA,
    )
    op.create_table(
        "dataset_version_items",
        sa.Column("version_id", sa.Uuid(), primary_key=True),
        sa.Column("asset_id", sa.Uuid(), primary_key=True),
        sa.Column("file_name", sa.Text(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("filename", sa.Text(), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("ontology_id", sa.Uuid(), nullable=False),
        sa.Column("ontology_version", sa.Integer(), nullable=False),
        sa.Column("shapes", postgresql.JSONB(), nullable=False),
        schema=SCHEMA,
    )
    # byte order: exports read a version's items in the order their zip paths sort
    op.create_index(
        "dataset_version_items_file_name",
        "dataset_version_items",
        ["version_id", sa.text('file_name COLLATE "C"')],
        unique=True,
        schema=SCHEMA,
    )
    op.create_table(
        "exports",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("version_id", sa.Uuid(), nullable=False, index=True),
        sa.Column("dataset_id", sa.Uuid(), nullable=False),
        sa.Column("format", sa.String(8), nullable=False),
        sa.Column("images", sa.String(8), nullable=False),
        sa.Column("state", sa.String(8), nullable=False),
        sa.Column("done", sa.Integer(), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("claimed_until", sa.DateTime(timezone=True)),
        sa.Column("object_key", sa.Text()),
        sa.Column("sha256", sa.String(64)),
        sa.Column("size", sa.BigInteger()),
        sa.Column("annotation_count", sa.Integer()),
        sa.Column("error", sa.Text()),
        sa.Column("requested_by", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True)),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
        schema=SCHEMA,
    )
    op.create_index(
        "exports_to_build",
        "exports",
        ["created_at"],
        schema=SCHEMA,
        postgresql_where=sa.text("state IN ('queued', 'running')"),
    )


def downgrade() -> None:
    op.drop_index("exports_to_build", table_name="exports", schema=SCHEMA)
    for table in ("exports", "dataset_version_items", "dataset_versions"):
        op.drop_table(table, schema=SCHEMA)
