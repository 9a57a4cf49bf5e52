"""What the ledger says of each client's credits, for the API to book against: the latest
balance's available credits, and the unlimited packages granted.

Both come from `credits.ledger`, whose earlier events this database has consumed already:
the deductions and restorations it applied are forgotten (`processed_events`), so that
`ops replay booking --topic credits.ledger` applies the whole ledger again, in its order,
and leaves each client's latest balance (marking a session's credit twice changes nothing).
Until then a client is known from their next ledger event. A rebuild needs none of this.

Revision ID: 0004
Revises: 0003
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: The ledger events booking applied before this revision (the others it ignored).
LEDGER_EVENTS_APPLIED_BEFORE = ("SessionCreditDeducted", "SessionCreditRestored")


def upgrade() -> None:
    op.create_table(
        "client_balances",
        sa.Column("user_id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("available", sa.Integer, nullable=False),
    )
    op.create_table(
        "unlimited_packages",
        sa.Column("package_id", sa.Uuid, primary_key=True),
        sa.Column("user_id", sa.BigInteger, nullable=False),
        sa.Column("valid_until", sa.DateTime(timezone=True)),
    )
    op.create_index("unlimited_packages_by_client", "unlimited_packages", ["user_id"])
    op.execute(
        sa.text("delete from processed_events where event_type = any(:types)").bindparams(
            types=list(LEDGER_EVENTS_APPLIED_BEFORE)
        )
    )


def downgrade() -> None:
    op.drop_table("unlimited_packages")
    op.drop_table("client_balances")
