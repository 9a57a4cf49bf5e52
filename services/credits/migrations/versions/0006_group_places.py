"""Group places: each client's place in a group session is charged once, like a one-to-one
session; the ledger's unique business key turns from the session to the session and client.

Every entry stays as it is: a one-to-one session has one client, so its entries are as
unique per (session, client) as they were per session. Going down refuses while the ledger
holds entries of several clients for one session (group places): they are never deleted.

Revision ID: 0006
Revises: 0005
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from servicekit.migrations import DataLossRefused, refuse_data_loss

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_SESSION_KINDS = ("deduction", "restoration", "forfeit", "waiver")


def _unique_per(kind: str, name: str, columns: list[str]) -> None:
    op.create_index(
        name,
        "ledger_entries",
        columns,
        unique=True,
        postgresql_where=sa.text(f"kind = '{kind}'"),
    )


def upgrade() -> None:
    for kind in _SESSION_KINDS:
        # Made before the old one goes: the ledger is never without the rule.
        _unique_per(kind, f"one_{kind}_per_place", ["session_id", "user_id"])
        op.drop_index(f"one_{kind}_per_session", "ledger_entries")
    op.create_table(
        "group_places",
        sa.Column("session_id", sa.BigInteger, primary_key=True),
        sa.Column("user_id", sa.BigInteger, primary_key=True),
        sa.Column("trainer_id", sa.BigInteger, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("session_date", sa.DateTime(timezone=True)),
        sa.Column("late_cancel_hours", sa.Integer),
        sa.Column("no_show_forfeits", sa.Boolean),
        sa.Column("ended_at", sa.DateTime(timezone=True)),
    )
    op.create_index("group_places_by_trainer_and_client", "group_places", ["trainer_id", "user_id"])
    op.add_column(
        "pending_deductions",
        sa.Column("group_place", sa.Boolean, server_default=sa.false(), nullable=False),
    )


def downgrade() -> None:
    connection = op.get_bind()
    shared = connection.scalar(
        sa.text(
            "select exists (select from ledger_entries where kind in ('deduction',"
            " 'restoration', 'forfeit', 'waiver') group by session_id, kind having count(*) > 1)"
        )
    )
    if shared:
        # The ledger is append-only: no option deletes entries.
        raise DataLossRefused(
            "refusing to downgrade below revision 0006: the ledger holds entries of several"
            " clients for one session (group places), which version 0005 cannot hold"
        )
    places = connection.scalar(sa.text("select count(*) from group_places"))
    parked = connection.scalar(sa.text("select count(*) from pending_deductions where group_place"))
    refuse_data_loss(
        places + parked,
        "group place or parked group deduction",
        "version 0005 knows no group places",
        below="0006",
    )
    op.drop_column("pending_deductions", "group_place")
    op.drop_index("group_places_by_trainer_and_client", "group_places")
    op.drop_table("group_places")
    for kind in _SESSION_KINDS:
        _unique_per(kind, f"one_{kind}_per_session", ["session_id"])
        op.drop_index(f"one_{kind}_per_place", "ledger_entries")
