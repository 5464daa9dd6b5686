"""Indexes for judging's own questions.

The live answers of one asset in one job (asked for every answer judged), and the waiting
assets whose first answer is oldest (asked by the consensus timeout sweep).

Revision ID: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
SCHEMA = "qc"


def upgrade() -> None:
    op.create_index(
        "annotations_live_by_asset",
        "annotations",
        ["asset_id", "job_id"],
        schema=SCHEMA,
        postgresql_where=sa.text("live"),
    )
    op.create_index(
        "reviews_waiting_since",
        "reviews",
        ["first_answer_at"],
        schema=SCHEMA,
        postgresql_where=sa.text("state = 'waiting'"),
    )


def downgrade() -> None:
    op.drop_index("reviews_waiting_since", table_name="reviews", schema=SCHEMA)
    op.drop_index("annotations_live_by_asset", table_name="annotations", schema=SCHEMA)
