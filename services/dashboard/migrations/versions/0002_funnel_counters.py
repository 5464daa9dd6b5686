"""Dashboard: the funnel's counters (assets per dataset, upload hour and mark) and what each
asset is counted as, both filled from the asset rows already projected.

Revision ID: 0002
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY

revision = "0002"
down_revision = "0001"
SCHEMA = "dashboard"

# What an asset counts for, as services/dashboard/domain/funnel.py says at this revision:
# stored; cleaned, rejected or (no verdict yet) cleaning; reason:<code> once per blocking
# reason of a rejection; in_labeling, dispatched, submitted; QC's latest decision. Sorted
# bytewise, as Python sorts them.
MARK_ASSETS = """
INSERT INTO dashboard.funnel_assets (asset_id, dataset_id, hour, marks)
SELECT a.asset_id,
    a.dataset_id,
    date_bin('1 hour', a.uploaded_at, TIMESTAMPTZ '2000-01-01 00:00Z'),
    ARRAY(
        SELECT mark FROM (
            SELECT 'stored' AS mark
            UNION ALL
            SELECT CASE WHEN a.verdict IS NULL THEN 'cleaning'
                        WHEN a.verdict IN ('cleaned', 'rejected') THEN a.verdict END
            UNION ALL
            SELECT DISTINCT 'reason:' || (r ->> 'code')
            FROM jsonb_array_elements(
                CASE WHEN a.verdict = 'rejected' AND jsonb_typeof(a.reasons) = 'array'
                     THEN a.reasons ELSE '[]'::jsonb END
            ) AS r
            UNION ALL
            SELECT 'in_labeling' WHERE a.tasks > 0
            UNION ALL
            SELECT 'dispatched' WHERE a.first_dispatched_at IS NOT NULL
            UNION ALL
            SELECT 'submitted' WHERE a.submissions > 0
            UNION ALL
            SELECT CASE a.decision WHEN 'accepted' THEN 'accepted' WHEN 'rework' THEN 'rework'
                                   WHEN 'rejected' THEN 'qc_rejected' END
        ) AS marks
        WHERE mark IS NOT NULL
        ORDER BY mark COLLATE "C"
    )
FROM dashboard.assets AS a
WHERE a.dataset_id IS NOT NULL AND a.uploaded_at IS NOT NULL
"""
FILL_COUNTERS = """
INSERT INTO dashboard.funnel_hours (dataset_id, hour, mark, assets)
SELECT dataset_id, hour, mark, count(*)
FROM dashboard.funnel_assets, unnest(marks) AS mark
GROUP BY dataset_id, hour, mark
"""


def upgrade() -> None:
    op.create_table(
        "funnel_hours",
        sa.Column("dataset_id", sa.Uuid(), primary_key=True),
        sa.Column("hour", sa.DateTime(timezone=True), primary_key=True),
        sa.Column("mark", sa.Text(), primary_key=True),
        sa.Column("assets", sa.Integer(), nullable=False),
        schema=SCHEMA,
    )
    op.create_table(
        "funnel_assets",
        sa.Column("asset_id", sa.Uuid(), primary_key=True),
        sa.Column("dataset_id", sa.Uuid(), nullable=False),
        sa.Column("hour", sa.DateTime(timezone=True), nullable=False),
        sa.Column("marks", ARRAY(sa.Text()), nullable=False),
        schema=SCHEMA,
    )
    # an upgraded deployment shows the numbers it showed before
    op.execute(MARK_ASSETS)
    op.execute(FILL_COUNTERS)


def downgrade() -> None:
    op.drop_table("funnel_assets", schema=SCHEMA)
    op.drop_table("funnel_hours", schema=SCHEMA)
