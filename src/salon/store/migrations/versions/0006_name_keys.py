"""account names compared by the full name key: NFKC, invisibles dropped, then the skeleton

The ``*_skeleton`` columns held the bare UTS #39 skeleton; they now hold
``salon.core.names.name_key``, which also folds compatibility forms (fullwidth letters) and
drops what shows nothing (joiners, variation selectors, fillers, whitespace). Recomputed for
every account, so a guest cannot take ``carla`` beside an account named ``carla`` + U+200D.

Revision ID: 0006
Revises: 0005
"""

from collections.abc import Callable

import sqlalchemy as sa
from alembic import op

from salon.core.names import name_key, skeleton

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def _recompute(key: Callable[[str], str]) -> None:
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
            .values(username_skeleton=key(row.username), display_skeleton=key(row.display_name))
        )


def upgrade() -> None:
    _recompute(name_key)


def downgrade() -> None:
    _recompute(skeleton)
