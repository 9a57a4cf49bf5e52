"""The read models of session usage: workouts and each client's usage.

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
    op.create_table(
        "workouts",
        sa.Column("workout_id", postgresql.UUID(as_uuid=True), primary_key=True),
        sa.Column("user_id", sa.BigInteger, nullable=False),
        sa.Column("session_type", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("changed_by", sa.Text, nullable=False),
        sa.CheckConstraint("session_type in ('solo', 'trainer-led')", name="session_type_is_known"),
        sa.CheckConstraint(
            "status in ('planned', 'in_progress', 'completed', 'skipped', 'cancelled')",
            name="status_is_known",
        ),
    )
    op.create_index("workouts_by_user_and_status", "workouts", ["user_id", "status"])
    op.create_table(
        "session_usage",
        sa.Column("user_id", sa.BigInteger, primary_key=True),
        sa.Column("solo_count", sa.Integer, server_default="0", nullable=False),
        sa.Column("trainer_led_count", sa.Integer, server_default="0", nullable=False),
        sa.Column("credits_total", sa.Integer, server_default="0", nullable=False),
        sa.Column("credits_used", sa.Integer, server_default="0", nullable=False),
        sa.Column("as_of", sa.DateTime(timezone=True)),
        sa.CheckConstraint(
            "solo_count >= 0 and trainer_led_count >= 0", name="counts_not_negative"
        ),
        sa.CheckConstraint("credits_used >= 0", name="credits_used_not_negative"),
    )


def downgrade() -> None:
    op.drop_table("session_usage")
    op.drop_index("workouts_by_user_and_status", table_name="workouts")
    op.drop_table("workouts")
