"""rooms keep their creator's host key (SHA-256) and account

A room's password now lives in memory with its meeting (set by a host), never in the store;
0008 clears the hashes v1 kept and seals the rooms that had one.

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("rooms") as batch:
        batch.add_column(sa.Column("host_key_sha256", sa.String(64), nullable=True))
        batch.add_column(sa.Column("creator_account", sa.String(256), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("rooms") as batch:
        batch.drop_column("creator_account")
        batch.drop_column("host_key_sha256")
