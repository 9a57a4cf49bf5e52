"""The service's view of booked sessions, from `booking.sessions`: whose they are, with which
trainer, and how far along they are (to refuse workouts for cancelled or missed sessions).

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


def upgrade() -> None:
    op.create_table(
        "sessions",
        sa.Column("session_id", sa.BigInteger, primary_key=True),
        sa.Column("user_id", sa.BigInteger, nullable=False),
        sa.Column("trainer_id", sa.BigInteger, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.CheckConstraint(
            "status in ('scheduled', 'in_progress', 'completed', 'no_show', 'cancelled')",
            name="status_is_known",
        ),
    )


def downgrade() -> None:
    op.drop_table("sessions")
