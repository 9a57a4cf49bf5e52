"""The credit ledger, balances, the service's view of sessions, and parked deductions.

Revision ID: 0002
Revises: 0001
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("create sequence ledger_seq")
    op.create_table(
        "ledger_entries",
        sa.Column("id", postgresql.UUID(as_uuid=True), primary_key=True),
        sa.Column(
            "seq", sa.BigInteger, server_default=sa.text("nextval('ledger_seq')"), nullable=False
        ),
        sa.Column("user_id", sa.BigInteger, nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("amount", sa.Integer, nullable=False),
        sa.Column("purchase_id", sa.Text),
        sa.Column("session_id", sa.BigInteger),
        sa.Column("trainer_id", sa.BigInteger),
        sa.Column("workout_id", postgresql.UUID(as_uuid=True)),
        sa.Column("cause", sa.Text),
        sa.Column("reason", sa.Text),
        sa.Column("caused_by", sa.Text, nullable=False),
        sa.Column(
            "recorded_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.CheckConstraint("kind in ('grant', 'deduction', 'restoration')", name="kind_is_known"),
        sa.CheckConstraint(
            "(kind = 'grant' and amount > 0) or (kind = 'deduction' and amount = -1)"
            " or (kind = 'restoration' and amount = 1)",
            name="amount_fits_kind",
        ),
        sa.CheckConstraint(
            "kind = 'grant' or session_id is not null", name="session_entries_name_a_session"
        ),
    )
    op.execute("alter sequence ledger_seq owned by ledger_entries.seq")
    op.create_index(
        "one_deduction_per_session",
        "ledger_entries",
        ["session_id"],
        unique=True,
        postgresql_where=sa.text("kind = 'deduction'"),
    )
    op.create_index(
        "one_restoration_per_session",
        "ledger_entries",
        ["session_id"],
        unique=True,
        postgresql_where=sa.text("kind = 'restoration'"),
    )
    op.create_index(
        "one_grant_per_purchase",
        "ledger_entries",
        ["purchase_id"],
        unique=True,
        postgresql_where=sa.text("kind = 'grant' and purchase_id is not null"),
    )
    op.create_index("ledger_entries_by_user", "ledger_entries", ["user_id", "seq"])
    # The ledger is append-only: refuse updates and deletes at the database itself.
    op.execute(
        """
        create function ledger_entries_are_append_only() returns trigger language plpgsql as $$
        begin
            raise exception 'ledger entries are never updated or deleted';
        end $$
        """
    )
    op.execute(
        "create trigger ledger_entries_append_only before update or delete on ledger_entries"
        " for each row execute function ledger_entries_are_append_only()"
    )
    op.create_table(
        "balances",
        sa.Column("user_id", sa.BigInteger, primary_key=True),
        sa.Column("total", sa.Integer, server_default="0", nullable=False),
        sa.Column("used", sa.Integer, server_default="0", nullable=False),
        sa.Column("remaining", sa.Integer, sa.Computed("total - used", persisted=True)),
    )
    op.create_table(
        "sessions",
        sa.Column("session_id", sa.BigInteger, primary_key=True),
        sa.Column("user_id", sa.BigInteger, nullable=False),
        sa.Column("trainer_id", sa.BigInteger, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
    )
    op.create_table(
        "pending_deductions",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("session_id", sa.BigInteger, nullable=False, index=True),
        sa.Column("user_id", sa.BigInteger, nullable=False),
        sa.Column("trainer_id", sa.BigInteger, nullable=False),
        sa.Column("workout_id", postgresql.UUID(as_uuid=True)),
        sa.Column("cause", sa.Text, nullable=False),
        sa.Column("caused_by", sa.Text, nullable=False),
        sa.Column(
            "received_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
    )


def downgrade() -> None:
    op.drop_table("pending_deductions")
    op.drop_table("sessions")
    op.drop_table("balances")
    op.drop_table("ledger_entries")
    op.execute("drop function ledger_entries_are_append_only()")
