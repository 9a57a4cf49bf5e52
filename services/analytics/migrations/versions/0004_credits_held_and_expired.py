"""Held and expired credits in each client's usage, beside total and used.

A row written before keeps 0 for both, which is what every balance the ledger announced
before holds and expiry meant; it takes the ledger's figures with the client's next ledger
event.

The downgrade would drop them, and a client with expired credits would then read as having
them remaining (remaining was total - used before): it refuses while any row holds either,
unless run with `-x allow-data-loss=true` (a rebuild from the topics restores them after).

Revision ID: 0004
Revises: 0003
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from servicekit.migrations import refuse_data_loss

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COLUMNS = ("credits_held", "credits_expired")


def upgrade() -> None:
    for column in _COLUMNS:
        op.add_column(
            "session_usage", sa.Column(column, sa.Integer, server_default="0", nullable=False)
        )
        op.create_check_constraint(f"{column}_not_negative", "session_usage", f"{column} >= 0")


def downgrade() -> None:
    holding = op.get_bind().execute(
        sa.text(
            "select count(*) from session_usage where credits_held <> 0 or credits_expired <> 0"
        )
    )
    refuse_data_loss(
        holding.scalar_one(),
        "credit balance",
        "the downgrade drops their held and expired credits, and expired ones would then read"
        " as remaining",
        below=revision,
    )
    for column in reversed(_COLUMNS):
        op.drop_constraint(f"{column}_not_negative", "session_usage", type_="check")
        op.drop_column("session_usage", column)
