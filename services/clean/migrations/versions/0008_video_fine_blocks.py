"""Video signatures: the finer block grid beside the samples.

``fine_blocks`` holds, per sample, the 16 x 16 block means of its thumbnail
(``checks.video.fingerprint.VideoSignature.pack_fine``, 256 bytes a sample, in the order of
``samples``); the alignment compares the two clips' motion on it. Rows stored before keep NULL:
nothing is rewritten, and they align as before (the motion check needs both clips' grids).

Revision ID: 0008
"""

from alembic import op

revision = "0008"
down_revision = "0007"
SCHEMA = "clean"


def upgrade() -> None:
    op.execute(f"ALTER TABLE {SCHEMA}.video_signatures ADD COLUMN fine_blocks bytea")


def downgrade() -> None:
    op.execute(f"ALTER TABLE {SCHEMA}.video_signatures DROP COLUMN fine_blocks")
