"""rooms remember whether a meeting with a password is under way (sealed)

A room's password lives in memory with its meeting; this flag is what outlives a restart: a
sealed room whose members do not come back first gets its chat erased before anyone else
reads it. The password hashes v1 stored (set by whoever joined an empty room first) go; their
rooms are sealed, so the chat shared under those passwords is erased before anyone reads it
without one. The column stays, unused, so a downgrade has somewhere to put nothing.

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
    rooms = sa.table("rooms", sa.column("password_hash", sa.String), sa.column("sealed"))
    op.execute(rooms.update().where(rooms.c.password_hash.is_not(None)).values(sealed=True))
    op.execute(rooms.update().values(password_hash=None))


def downgrade() -> None:
    with op.batch_alter_table("rooms") as batch:
        batch.drop_column("sealed")
