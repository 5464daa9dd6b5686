"""Records can be looked up by the dataset their event is about (keys limited to datasets).

Revision ID: 0002
"""

from alembic import op

revision = "0002"
down_revision = "0001"
SCHEMA = "audit"


def upgrade() -> None:
    # An expression index: nothing is added to the hash-chained rows themselves.
    op.execute(
        f'CREATE INDEX audit_records_dataset ON "{SCHEMA}".audit_records '
        "((payload->>'dataset_id'), seq)"
    )


def downgrade() -> None:
    op.execute(f'DROP INDEX "{SCHEMA}".audit_records_dataset')
