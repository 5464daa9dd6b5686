"""Near-duplicate lookups scan an in-memory copy of each dataset's hashes, read from the reports.

Drops the multi-index band table and adds the index the copy is refreshed through: a dataset's
hashes in arrival order.

Revision ID: 0002
"""

from alembic import op

revision = "0002"
down_revision = "0001"
SCHEMA = "clean"


def upgrade() -> None:
    op.drop_table("phash_bands", schema=SCHEMA)
    op.execute(
        f"CREATE INDEX quality_reports_hashes ON {SCHEMA}.quality_reports (dataset_id, arrival)"
        " INCLUDE (asset_id, phash) WHERE phash IS NOT NULL"
    )


def downgrade() -> None:
    raise NotImplementedError("rebuild the schema instead: the band table held no original data")
