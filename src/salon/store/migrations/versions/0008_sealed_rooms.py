"""rooms remember whether a meeting with a password is under way (sealed)

A room's password lives in memory with its meeting; this flag is what outlives a restart: a
sealed room whose members do not come back first gets its chat erased before anyone else
reads it.

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("rooms") as batch:
        batch.add_column(
            sa.Column("sealed", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table("rooms") as batch:
        batch.drop_column("sealed")
