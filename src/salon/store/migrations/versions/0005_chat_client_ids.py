"""chat messages keep the sender's own id for them, stored once per room

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("chat_messages") as batch:
        batch.add_column(sa.Column("client_id", sa.String(64), nullable=True))
        # NULLs are distinct in both SQLite and PostgreSQL: messages without an id never clash.
        batch.create_unique_constraint("uq_chat_messages_room_client_id", ["room", "client_id"])


def downgrade() -> None:
    with op.batch_alter_table("chat_messages") as batch:
        batch.drop_constraint("uq_chat_messages_room_client_id", type_="unique")
        batch.drop_column("client_id")
