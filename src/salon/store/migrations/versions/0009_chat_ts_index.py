"""an index on chat_messages.ts, for the retention sweep (chat_retention_days)

The sweep deletes every message older than the retention, across rooms, once an hour; the
index keeps that a range scan instead of a full one.

Revision ID: 0009
Revises: 0008
"""

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_chat_messages_ts", "chat_messages", ["ts"])


def downgrade() -> None:
    op.drop_index("ix_chat_messages_ts", table_name="chat_messages")
