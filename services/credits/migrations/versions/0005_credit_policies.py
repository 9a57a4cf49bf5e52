"""Credit policies: packages and what each paid, holds, forfeits, waivers, expiries and solo
workouts counted.

Every entry and balance already written keeps its meaning: a grant made before packages
opens a package of its credits that never expires (dated when it was recorded), and the
sessions booked and not yet charged hold their credit from now on.

Revision ID: 0005
Revises: 0004
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_KINDS_BEFORE = "kind in ('grant', 'deduction', 'restoration')"
_AMOUNTS_BEFORE = (
    "(kind = 'grant' and amount > 0) or (kind = 'deduction' and amount = -1)"
    " or (kind = 'restoration' and amount = 1)"
)
_SESSIONS_BEFORE = "kind = 'grant' or session_id is not null"

_KINDS = "kind in ('grant', 'deduction', 'restoration', 'forfeit', 'waiver', 'expiry', 'solo')"
_AMOUNTS = (
    "(kind = 'grant' and amount >= 0)"
    " or (kind in ('deduction', 'forfeit') and amount in (-1, 0))"
    " or (kind in ('restoration', 'waiver') and amount in (0, 1))"
    " or (kind = 'expiry' and amount < 0)"
    " or (kind = 'solo' and amount = 0)"
)
_SESSIONS = (
    "kind not in ('deduction', 'forfeit', 'restoration', 'waiver') or session_id is not null"
)


def _replace_checks(kinds: str, amounts: str, sessions: str) -> None:
    for name, condition in (
        ("kind_is_known", kinds),
        ("amount_fits_kind", amounts),
        ("session_entries_name_a_session", sessions),
    ):
        op.drop_constraint(name, "ledger_entries", type_="check")
        op.create_check_constraint(name, "ledger_entries", condition)


def upgrade() -> None:
    op.add_column("ledger_entries", sa.Column("package_id", postgresql.UUID(as_uuid=True)))
    op.add_column("ledger_entries", sa.Column("effective_at", sa.DateTime(timezone=True)))
    _replace_checks(_KINDS, _AMOUNTS, _SESSIONS)
    for kind in ("forfeit", "waiver"):
        op.create_index(
            f"one_{kind}_per_session",
            "ledger_entries",
            ["session_id"],
            unique=True,
            postgresql_where=sa.text(f"kind = '{kind}'"),
        )

    op.create_table(
        "packages",
        sa.Column("package_id", postgresql.UUID(as_uuid=True), primary_key=True),
        sa.Column("user_id", sa.BigInteger, nullable=False),
        sa.Column("package_type", sa.Text, nullable=False),
        sa.Column("sessions", sa.Integer, nullable=False),
        sa.Column("solo_allowance", sa.Integer),
        sa.Column("weekly_cap", sa.Integer),
        sa.Column("valid_until", sa.DateTime(timezone=True)),
        sa.Column("purchased_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("purchase_id", sa.Text),
        sa.Column("name", sa.Text),
        sa.Column("used", sa.Integer, server_default="0", nullable=False),
        sa.Column("expired", sa.Integer, server_default="0", nullable=False),
        sa.Column("solo_used", sa.Integer, server_default="0", nullable=False),
        sa.Column("closed", sa.Boolean, server_default=sa.false(), nullable=False),
        sa.Column("warned", sa.Boolean, server_default=sa.false(), nullable=False),
    )
    op.create_index("packages_by_user", "packages", ["user_id"])
    op.create_index(
        "packages_ending",
        "packages",
        ["valid_until"],
        postgresql_where=sa.text("not closed and valid_until is not null"),
    )
    op.create_table(
        "package_weeks",
        sa.Column("package_id", postgresql.UUID(as_uuid=True), primary_key=True),
        sa.Column("week", sa.Date, primary_key=True),
        sa.Column("sessions", sa.Integer, nullable=False),
    )
    # Each grant so far opens a package of its credits that never expires; what it paid is
    # not known (deductions so far name no package), so it is what is left that counts: the
    # client's deductions are drawn from the oldest grants first.
    op.execute(
        """
        insert into packages (package_id, user_id, package_type, sessions, purchased_at,
                              purchase_id, name, used)
        select id, user_id, 'sessions', amount, recorded_at, purchase_id, reason,
               greatest(0, least(amount, coalesce(b.used, 0) - (sum(amount) over (
                   partition by e.user_id order by seq) - amount)))
        from ledger_entries e left join balances b using (user_id)
        where kind = 'grant'
        """
    )

    op.add_column("balances", sa.Column("expired", sa.Integer, server_default="0", nullable=False))
    op.add_column("balances", sa.Column("held", sa.Integer, server_default="0", nullable=False))
    op.add_column(
        "balances", sa.Column("low", sa.Boolean, server_default=sa.true(), nullable=False)
    )
    op.drop_column("balances", "remaining")
    op.add_column(
        "balances",
        sa.Column("remaining", sa.Integer, sa.Computed("total - used - expired", persisted=True)),
    )

    op.add_column("sessions", sa.Column("session_date", sa.DateTime(timezone=True)))
    op.add_column("sessions", sa.Column("late_cancel_hours", sa.Integer))
    op.add_column("sessions", sa.Column("no_show_forfeits", sa.Boolean))
    op.add_column("sessions", sa.Column("ended_at", sa.DateTime(timezone=True)))
    # Sessions booked and not yet charged hold their credit.
    op.execute(
        """
        insert into balances (user_id, held)
        select user_id, count(*) from sessions s
        where status in ('scheduled', 'in_progress') and not exists (
            select from ledger_entries e where e.kind = 'deduction' and e.session_id = s.session_id)
        group by user_id
        on conflict (user_id) do update set held = excluded.held
        """
    )
    op.execute("update balances set low = (remaining - held <= 1)")
    op.add_column("pending_deductions", sa.Column("delivered_at", sa.DateTime(timezone=True)))


def downgrade() -> None:
    op.drop_column("pending_deductions", "delivered_at")
    for column in ("ended_at", "no_show_forfeits", "late_cancel_hours", "session_date"):
        op.drop_column("sessions", column)
    op.drop_column("balances", "remaining")
    for column in ("low", "held", "expired"):
        op.drop_column("balances", column)
    op.add_column(
        "balances", sa.Column("remaining", sa.Integer, sa.Computed("total - used", persisted=True))
    )
    op.drop_table("package_weeks")
    op.drop_index("packages_ending", "packages")
    op.drop_index("packages_by_user", "packages")
    op.drop_table("packages")
    for kind in ("waiver", "forfeit"):
        op.drop_index(f"one_{kind}_per_session", "ledger_entries")
    # Entries of the new kinds cannot be told in the old shape: downgrading a ledger that
    # holds any fails on these constraints, rather than losing them.
    _replace_checks(_KINDS_BEFORE, _AMOUNTS_BEFORE, _SESSIONS_BEFORE)
    op.drop_column("ledger_entries", "effective_at")
    op.drop_column("ledger_entries", "package_id")
