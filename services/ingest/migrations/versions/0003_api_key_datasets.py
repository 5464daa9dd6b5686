"""API keys may be limited to a list of datasets (NULL: every dataset).

Revision ID: 0003
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY, UUID

revision = "0003"
down_revision = "0002"
SCHEMA = "ingest"


def upgrade() -> None:
    op.add_column(
        "api_keys", sa.Column("datasets", ARRAY(UUID(as_uuid=True)), nullable=True), schema=SCHEMA
    )


def downgrade() -> None:
    op.drop_column("api_keys", "datasets", schema=SCHEMA)
