"""Indexes for the dispatcher's other questions, asked every round.

How many tasks a vendor holds (its free capacity), which tasks a delivery still carries when
its answer is recorded, and which delivery of a vendor is its latest.

Revision ID: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
SCHEMA = "labeling"


def upgrade() -> None:
    op.create_index(
        "tasks_held",
        "tasks",
        ["vendor_id"],
        schema=SCHEMA,
        postgresql_where=sa.text("state IN ('assigned', 'dispatched')"),
    )
    op.create_index(
        "tasks_in_delivery",
        "tasks",
        ["delivery_id"],
        schema=SCHEMA,
        postgresql_where=sa.text("state = 'assigned'"),
    )
    op.create_index(
        "deliveries_by_vendor_newest",
        "deliveries",
        ["vendor_id", "created_at"],
        schema=SCHEMA,
    )


def downgrade() -> None:
    op.drop_index("deliveries_by_vendor_newest", table_name="deliveries", schema=SCHEMA)
    op.drop_index("tasks_in_delivery", table_name="tasks", schema=SCHEMA)
    op.drop_index("tasks_held", table_name="tasks", schema=SCHEMA)
