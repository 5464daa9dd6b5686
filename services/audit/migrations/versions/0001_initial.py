"""Append-only, hash-chained audit records.

Revision ID: 0001
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0001"
down_revision = None
SCHEMA = "audit"
GENESIS = "0" * 64


def upgrade() -> None:
    op.create_table(
        "audit_records",
        sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("event_id", sa.String(64), nullable=False, unique=True),
        sa.Column("type", sa.Text, nullable=False),
        sa.Column("subject", sa.Text),
        sa.Column("actor", sa.Text),
        sa.Column("service", sa.Text, nullable=False),
        sa.Column("time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("trace_id", sa.String(32)),
        sa.Column("topic", sa.Text, nullable=False),
        sa.Column("payload", JSONB, nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column(
            "recorded_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        schema=SCHEMA,
    )
    for column in ("type", "subject", "actor", "time"):
        op.create_index(f"audit_records_{column}", "audit_records", [column], schema=SCHEMA)
    op.create_table(
        "chain_head",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.CheckConstraint("id = 1", name="chain_head_single_row"),
        schema=SCHEMA,
    )
    op.execute(f"INSERT INTO {SCHEMA}.chain_head (id, seq, hash) VALUES (1, 0, '{GENESIS}')")  # noqa: S608
    op.execute(
        f"""
        CREATE FUNCTION {SCHEMA}.refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'audit_records is append-only: % refused', TG_OP
                USING ERRCODE = 'insufficient_privilege';
        END $$;
        """
    )
    op.execute(
        f"""
        CREATE TRIGGER audit_records_append_only
        BEFORE UPDATE OR DELETE ON {SCHEMA}.audit_records
        FOR EACH ROW EXECUTE FUNCTION {SCHEMA}.refuse_change();
        """
    )
    op.execute(
        f"""
        CREATE TRIGGER audit_records_no_truncate
        BEFORE TRUNCATE ON {SCHEMA}.audit_records
        FOR EACH STATEMENT EXECUTE FUNCTION {SCHEMA}.refuse_change();
        """
    )


def downgrade() -> None:
    raise NotImplementedError("the audit log is never downgraded")
