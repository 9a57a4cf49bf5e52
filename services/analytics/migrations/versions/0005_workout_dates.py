"""When each workout took place, for usage over a date range (`?from=&to=`).

Workouts recorded before keep no date (their events are not kept here): a range counts only
workouts with one, so after upgrading a platform with history run `ops rebuild analytics`,
which reads every WorkoutLogged again from the topic and dates them all. The index on
client, status and date (type included) replaces the one on client and status: it serves a
client's counts, all time or over a range, from the index alone.

The downgrade would drop the dates: it refuses while any workout has one, unless run with
`-x allow-data-loss=true` (a rebuild from the topics restores them after).

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


def upgrade() -> None:
    op.add_column("workouts", sa.Column("workout_date", sa.DateTime(timezone=True)))
    op.create_index(
        "workouts_by_user_status_and_date",
        "workouts",
        ["user_id", "status", "workout_date"],
        postgresql_include=["session_type"],
    )
    # The new index serves every query the old one did (its columns lead it).
    op.drop_index("workouts_by_user_and_status", table_name="workouts")


def downgrade() -> None:
    dated = op.get_bind().execute(
        sa.text("select count(*) from workouts where workout_date is not null")
    )
    refuse_data_loss(
        dated.scalar_one(),
        "workout",
        "the downgrade drops their dates, and usage over a date range with them",
        below=revision,
    )
    op.create_index("workouts_by_user_and_status", "workouts", ["user_id", "status"])
    op.drop_index("workouts_by_user_status_and_date", table_name="workouts")
    op.drop_column("workouts", "workout_date")
