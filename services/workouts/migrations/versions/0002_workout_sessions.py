"""Workout sessions with their exercises and sets, as they were before session types.

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
        "workout_sessions",
        sa.Column("id", postgresql.UUID(as_uuid=True), primary_key=True),
        sa.Column("user_id", sa.BigInteger, nullable=False),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("date", sa.DateTime(timezone=True), nullable=False),
        sa.Column("duration", sa.Integer),
        sa.Column("intensity", sa.Integer),
        sa.Column("status", sa.Text, server_default="completed", nullable=False),
        sa.Column("total_weight", sa.Double, server_default="0", nullable=False),
        sa.Column("total_reps", sa.BigInteger, server_default="0", nullable=False),
        sa.Column("total_sets", sa.Integer, server_default="0", nullable=False),
        sa.Column("experience_points", sa.BigInteger, server_default="0", nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.CheckConstraint(
            "status in ('planned', 'in_progress', 'completed', 'skipped', 'cancelled')",
            name="status_is_known",
        ),
        sa.CheckConstraint("char_length(title) between 1 and 200", name="title_length"),
        sa.CheckConstraint("duration >= 0", name="duration_not_negative"),
        sa.CheckConstraint("intensity >= 0", name="intensity_not_negative"),
        sa.CheckConstraint(
            "total_weight >= 0 and total_reps >= 0 and total_sets >= 0 and experience_points >= 0",
            name="totals_not_negative",
        ),
    )
    op.create_index("workout_sessions_by_user_date", "workout_sessions", ["user_id", "date"])
    op.create_table(
        "exercises",
        sa.Column(
            "workout_id",
            postgresql.UUID(as_uuid=True),
            sa.ForeignKey("workout_sessions.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("position", sa.Integer, primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.CheckConstraint("position >= 1", name="position_from_one"),
        sa.CheckConstraint("char_length(name) >= 1", name="name_not_empty"),
    )
    op.create_table(
        "exercise_sets",
        sa.Column("workout_id", postgresql.UUID(as_uuid=True), primary_key=True),
        sa.Column("exercise_position", sa.Integer, primary_key=True),
        sa.Column("position", sa.Integer, primary_key=True),
        sa.Column("reps", sa.Integer, nullable=False),
        sa.Column("weight", sa.Double),
        sa.ForeignKeyConstraint(
            ["workout_id", "exercise_position"],
            ["exercises.workout_id", "exercises.position"],
            ondelete="CASCADE",
        ),
        sa.CheckConstraint("position >= 1", name="position_from_one"),
        sa.CheckConstraint("reps >= 0", name="reps_not_negative"),
        sa.CheckConstraint("weight >= 0", name="weight_not_negative"),
    )


def downgrade() -> None:
    op.drop_table("exercise_sets")
    op.drop_table("exercises")
    op.drop_table("workout_sessions")
