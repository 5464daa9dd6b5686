"""QC: vendor scorecard counters, one row per vendor, job and hour.

Revision ID: 0004
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0004"
down_revision = "0003"
SCHEMA = "qc"

COUNTERS = (
    "submitted",
    "lead_time_count",
    "gold_count",
    "gold_true_positives",
    "gold_false_positives",
    "gold_false_negatives",
    "gold_iou_count",
    "gold_class_correct",
    "gold_class_total",
    "agreement_count",
    "accepted",
    "rejected",
    "rework",
    "expired",
)
SUMS = ("lead_time_sum", "gold_iou_sum", "agreement_sum")


def upgrade() -> None:
    op.create_table(
        "vendor_hours",
        sa.Column("vendor_id", sa.Uuid(), primary_key=True),
        sa.Column("job_id", sa.Uuid(), primary_key=True),
        sa.Column("hour", sa.DateTime(timezone=True), primary_key=True),
        *(sa.Column(name, sa.BigInteger(), nullable=False) for name in COUNTERS),
        *(sa.Column(name, sa.Numeric(38, 9), nullable=False) for name in SUMS),
        sa.Column("lead_time_buckets", postgresql.ARRAY(sa.BigInteger()), nullable=False),
        schema=SCHEMA,
    )
    op.create_index("vendor_hours_by_job", "vendor_hours", ["job_id", "hour"], schema=SCHEMA)
    # Histograms are added element by element: one row's upsert, and over a window's rows.
    op.execute(
        """
        CREATE FUNCTION qc.add_counts(a bigint[], b bigint[]) RETURNS bigint[]
        LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
            SELECT array_agg(coalesce(x, 0) + coalesce(y, 0) ORDER BY i)
            FROM unnest(a, b) WITH ORDINALITY AS t(x, y, i)
        $$
        """
    )
    op.execute(
        "CREATE AGGREGATE qc.sum_counts(bigint[]) "
        "(SFUNC = qc.add_counts, STYPE = bigint[], PARALLEL = SAFE)"
    )


def downgrade() -> None:
    op.execute("DROP AGGREGATE qc.sum_counts(bigint[])")
    op.execute("DROP FUNCTION qc.add_counts(bigint[], bigint[])")
    op.drop_table("vendor_hours", schema=SCHEMA)
