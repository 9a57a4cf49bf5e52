"""Each client's ledger entries that moved their credits, for the dashboard's list of
recent entries ("where did my credits go"). Empty after upgrading: `ops rebuild analytics`
(or a replay of `credits.ledger`) fills it with the history.

The downgrade refuses while the table holds any entry, unless run with
`-x allow-data-loss=true` (a rebuild from the topic restores them after).

Revision ID: 0007
Revises: 0006
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from servicekit.migrations import refuse_data_loss

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "ledger_entries",
        sa.Column("event_id", sa.Text, primary_key=True),
        sa.Column("user_id", sa.BigInteger, nullable=False),
        sa.Column("entry_type", sa.Text, nullable=False),
        sa.Column("change", sa.Integer, nullable=False),
        sa.Column("remaining", sa.Integer, nullable=False),
        sa.Column("session_id", sa.BigInteger),
        sa.Column("detail", sa.Text),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ledger_entries_by_user_and_time", "ledger_entries", ["user_id", "occurred_at"])


def downgrade() -> None:
    entries = op.get_bind().execute(sa.text("select count(*) from ledger_entries"))
    refuse_data_loss(
        entries.scalar_one(),
        "ledger entry",
        "the downgrade drops the dashboard's list of each client's ledger entries",
        below=revision,
    )
    op.drop_index("ledger_entries_by_user_and_time", table_name="ledger_entries")
    op.drop_table("ledger_entries")
