"""rooms.removed: whom the meeting under way removed, so that a restart does not seat them again

A JSON object {"until_ms", "ids", "accounts", "addresses"} (salon.core.passwords.Removed), or
NULL when the meeting removed nobody; removed_until_ms repeats until_ms, so that every write
can drop what has expired in any room (client addresses are not kept longer than needed).
Rooms nobody created over REST get a row when their meeting first removes someone, as
sealing does.

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("rooms") as batch:
        batch.add_column(sa.Column("removed", sa.Text(), nullable=True))
        batch.add_column(sa.Column("removed_until_ms", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("rooms") as batch:
        batch.drop_column("removed_until_ms")
        batch.drop_column("removed")
