"""Solo and trainer-led workouts: the session type, the booked session and its trainer.

Every workout logged before this change was self-logged, so existing rows become solo (the
column's default), which the new rule accepts: solo names no session and no trainer.
A trainer-led workout names both. There are no foreign keys: sessions and trainers belong to
other services, and a workout may name a session whose booking has not arrived here yet.

The downgrade would drop the links of trainer-led workouts, which would then come back as
solo: it refuses while there are any, unless run with `-x allow-data-loss=true`.

Revision ID: 0003
Revises: 0002
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from servicekit.migrations import refuse_data_loss

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "workout_sessions",
        sa.Column("session_type", sa.Text, server_default="solo", nullable=False),
    )
    op.add_column("workout_sessions", sa.Column("session_id", sa.BigInteger))
    op.add_column("workout_sessions", sa.Column("trainer_id", sa.BigInteger))
    op.create_check_constraint(
        "session_link_matches_type",
        "workout_sessions",
        "(session_type = 'trainer-led' and session_id is not null and trainer_id is not null)"
        " or (session_type = 'solo' and session_id is null and trainer_id is null)",
    )
    # Usage counts per client, type and status; and every workout of one booked session.
    op.create_index(
        "workout_sessions_by_user_status_type",
        "workout_sessions",
        ["user_id", "status", "session_type"],
    )
    op.create_index("workout_sessions_by_session", "workout_sessions", ["session_id"])


def downgrade() -> None:
    trainer_led = op.get_bind().execute(
        sa.text("select count(*) from workout_sessions where session_type = 'trainer-led'")
    )
    refuse_data_loss(
        trainer_led.scalar_one(),
        "trainer-led workout",
        "the downgrade drops their session and trainer, and they would come back as solo workouts",
        below=revision,
    )
    op.drop_index("workout_sessions_by_session", table_name="workout_sessions")
    op.drop_index("workout_sessions_by_user_status_type", table_name="workout_sessions")
    op.drop_constraint("session_link_matches_type", "workout_sessions", type_="check")
    op.drop_column("workout_sessions", "trainer_id")
    op.drop_column("workout_sessions", "session_id")
    op.drop_column("workout_sessions", "session_type")
