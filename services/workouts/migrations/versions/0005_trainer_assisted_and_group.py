"""Trainer-assisted and group workouts (WorkoutLogged version 2): the plan a trainer-assisted
workout follows and the size of a group workout's session.

Every row before this change is solo or trainer-led, and both keep their shape: the rule of
each session type is extended, not changed (trainer-assisted names its trainer and plan and no
session; group names its session and trainer). A trainer's trainer-assisted workouts are
found by trainer and date.

The downgrade would have to delete every workout of the new types (the older rule cannot
hold them): it refuses while there are any, unless run with `-x allow-data-loss=true`.

Revision ID: 0005
Revises: 0004
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from servicekit.migrations import refuse_data_loss

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_EVERY_TYPE = (
    "(session_type = 'solo' and group_size is null and plan_id is null and session_id is null"
    " and trainer_id is null)"
    " or (session_type = 'trainer-led' and session_id is not null and trainer_id is not null"
    " and group_size is null and plan_id is null)"
    " or (session_type = 'trainer-assisted' and plan_id is not null and trainer_id is not null"
    " and group_size is null and session_id is null)"
    " or (session_type = 'group' and session_id is not null and trainer_id is not null"
    " and plan_id is null)"
)
_SOLO_AND_TRAINER_LED = (
    "(session_type = 'trainer-led' and session_id is not null and trainer_id is not null)"
    " or (session_type = 'solo' and session_id is null and trainer_id is null)"
)


def upgrade() -> None:
    op.add_column("workout_sessions", sa.Column("plan_id", sa.Text))
    op.add_column("workout_sessions", sa.Column("group_size", sa.Integer))
    op.drop_constraint("session_link_matches_type", "workout_sessions", type_="check")
    op.create_check_constraint("session_link_matches_type", "workout_sessions", _EVERY_TYPE)
    op.create_index(
        "workout_sessions_assisted_by_trainer",
        "workout_sessions",
        ["trainer_id", "date"],
        postgresql_where=sa.text("session_type = 'trainer-assisted'"),
    )


def downgrade() -> None:
    new_types = op.get_bind().execute(
        sa.text(
            "select count(*) from workout_sessions"
            " where session_type in ('trainer-assisted', 'group')"
        )
    )
    refuse_data_loss(
        new_types.scalar_one(),
        "trainer-assisted or group workout",
        "the older session-type rule cannot hold them, so the downgrade deletes them",
        below=revision,
    )
    op.execute("delete from workout_sessions where session_type in ('trainer-assisted', 'group')")
    op.drop_index("workout_sessions_assisted_by_trainer", table_name="workout_sessions")
    op.drop_constraint("session_link_matches_type", "workout_sessions", type_="check")
    op.create_check_constraint(
        "session_link_matches_type", "workout_sessions", _SOLO_AND_TRAINER_LED
    )
    op.drop_column("workout_sessions", "group_size")
    op.drop_column("workout_sessions", "plan_id")
