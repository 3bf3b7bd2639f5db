"""confusable skeletons of account names

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

from salon.core.names import skeleton

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_COLUMNS = ("username_skeleton", "display_skeleton")


def upgrade() -> None:
    with op.batch_alter_table("accounts") as batch:
        for name in _COLUMNS:
            batch.add_column(sa.Column(name, sa.Text(), nullable=True))
    accounts = sa.table(
        "accounts",
        sa.column("id", sa.String),
        sa.column("username", sa.String),
        sa.column("display_name", sa.String),
        sa.column("username_skeleton", sa.String),
        sa.column("display_skeleton", sa.String),
    )
    bind = op.get_bind()
    rows = bind.execute(sa.select(accounts.c.id, accounts.c.username, accounts.c.display_name))
    for row in rows.all():
        bind.execute(
            accounts.update()
            .where(accounts.c.id == row.id)
            .values(
                username_skeleton=skeleton(row.username),
                display_skeleton=skeleton(row.display_name),
            )
        )
    with op.batch_alter_table("accounts") as batch:
        for name in _COLUMNS:
            batch.alter_column(name, existing_type=sa.Text(), nullable=False)
    for name in _COLUMNS:
        op.create_index(f"ix_accounts_{name}", "accounts", [name])


def downgrade() -> None:
    for name in _COLUMNS:
        op.drop_index(f"ix_accounts_{name}", "accounts")
    with op.batch_alter_table("accounts") as batch:
        for name in _COLUMNS:
            batch.drop_column(name)
