"""Sessions, the sequence the API takes their ids from, and what the ledger says of credits.

Revision ID: 0002
Revises: 0001
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "sessions",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("user_id", sa.BigInteger, nullable=False),
        sa.Column("trainer_id", sa.BigInteger, nullable=False),
        sa.Column("session_date", sa.DateTime(timezone=True), nullable=False),
        sa.Column("duration", sa.Integer, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("location", sa.Text),
        sa.Column("notes", sa.Text),
        sa.Column("status_reason", sa.Text),
        sa.Column("booking_received", sa.Boolean, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "status in ('scheduled', 'in_progress', 'completed', 'cancelled', 'no_show')",
            name="status_is_known",
        ),
        sa.CheckConstraint("duration > 0", name="duration_is_positive"),
    )
    op.create_index("sessions_by_date", "sessions", ["session_date", "id"])
    op.create_index("sessions_by_client", "sessions", ["user_id", "session_date"])
    op.create_index("sessions_by_trainer", "sessions", ["trainer_id", "session_date"])
    # Ids have no column default: events bring their own, and the API asks this sequence.
    op.execute("create sequence session_ids as bigint owned by sessions.id")
    op.create_table(
        "session_credits",
        sa.Column("session_id", sa.BigInteger, primary_key=True),
        sa.Column("credit_deducted", sa.Boolean, server_default=sa.false(), nullable=False),
        sa.Column("credit_restored", sa.Boolean, server_default=sa.false(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("session_credits")
    # The sequence goes with the table that owns it.
    op.drop_table("sessions")
