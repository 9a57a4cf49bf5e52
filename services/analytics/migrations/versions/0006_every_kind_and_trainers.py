"""Every kind of session: trainer-assisted and group workouts counted beside solo and
trainer-led, each trainer's booked sessions, and the studio's completed workouts per day.

- `workouts` takes the two new session types and keeps the trainer a workout names
  (`trainer_id`: rows recorded before have none; `ops rebuild analytics` fills them), with an
  index for a trainer's trainer-assisted workouts over a range, and one for the studio's
  completed workouts by UTC day (part of a day, where a range's bound falls inside one).
- `session_usage` counts the two new kinds (0 for every existing client: no such workout
  could be recorded before).
- `trainer_sessions` and `session_places`: the booked sessions of `booking.sessions` (one-to-
  one and group) and each client's place in them, for each trainer's figures. Empty after
  upgrading: `ops rebuild analytics` (or a replay of `booking.sessions`) fills them.
- `workout_days`: completed workouts per UTC day and type, for the studio-wide answer; filled
  here from the dated workouts already recorded, then kept by the service in the transaction
  that changes the workouts.

The downgrade refuses while any row holds what it would drop (a workout of a new kind, a
trainer, a new count, a booked session or a place), unless run with
`-x allow-data-loss=true`: it then deletes the workouts of the new kinds (the older
constraint cannot hold them). `workout_days` is derived from `workouts` and dropped freely.

Revision ID: 0006
Revises: 0005
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from servicekit.migrations import refuse_data_loss

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_NEW_KINDS = "('trainer-assisted', 'group')"


def upgrade() -> None:
    op.drop_constraint("session_type_is_known", "workouts", type_="check")
    op.create_check_constraint(
        "session_type_is_known",
        "workouts",
        "session_type in ('solo', 'trainer-led', 'trainer-assisted', 'group')",
    )
    op.add_column("workouts", sa.Column("trainer_id", sa.BigInteger))
    op.create_index(
        "trainer_assisted_by_trainer_and_date",
        "workouts",
        ["trainer_id", "workout_date"],
        postgresql_where=sa.text("session_type = 'trainer-assisted' and status = 'completed'"),
    )
    op.create_index(
        "workouts_completed_by_day",
        "workouts",
        [sa.text("date(timezone('UTC', workout_date))")],
        postgresql_include=["workout_date", "session_type"],
        postgresql_where=sa.text("status = 'completed'"),
    )
    for column in ("trainer_assisted_count", "group_count"):
        op.add_column(
            "session_usage",
            sa.Column(column, sa.Integer, server_default="0", nullable=False),
        )
    op.create_check_constraint(
        "new_counts_not_negative",
        "session_usage",
        "trainer_assisted_count >= 0 and group_count >= 0",
    )
    op.create_table(
        "trainer_sessions",
        sa.Column("session_id", sa.BigInteger, primary_key=True),
        sa.Column("kind", sa.Text),
        sa.Column("trainer_id", sa.BigInteger),
        sa.Column("session_date", sa.DateTime(timezone=True)),
        sa.Column("status", sa.Text, nullable=False),
        sa.CheckConstraint("kind in ('one-to-one', 'group')", name="session_kind_is_known"),
        sa.CheckConstraint(
            "status in ('scheduled', 'completed', 'cancelled', 'no_show')",
            name="session_status_is_known",
        ),
    )
    op.create_index(
        "trainer_sessions_by_trainer_status_and_date",
        "trainer_sessions",
        ["trainer_id", "status", "session_date"],
        postgresql_include=["kind"],
    )
    op.create_table(
        "session_places",
        sa.Column("session_id", sa.BigInteger, primary_key=True),
        sa.Column("user_id", sa.BigInteger, primary_key=True),
        sa.Column("outcome", sa.Text, nullable=False),
        sa.CheckConstraint(
            "outcome in ('booked', 'left', 'attended', 'no_show')", name="place_outcome_is_known"
        ),
    )
    op.create_table(
        "workout_days",
        sa.Column("day", sa.Date, primary_key=True),
        sa.Column("session_type", sa.Text, primary_key=True),
        # No check that it stays >= 0: the service adds changes (-1 too) by upsert, and
        # PostgreSQL checks the row proposed before it finds the row to add it to.
        sa.Column("completed", sa.Integer, nullable=False),
    )
    op.execute(
        "insert into workout_days (day, session_type, completed)"
        " select (workout_date at time zone 'UTC')::date, session_type, count(*)"
        " from workouts where status = 'completed' and workout_date is not null"
        " group by 1, 2"
    )


def downgrade() -> None:
    bind = op.get_bind()
    holding = bind.execute(
        sa.text(
            "select (select count(*) from workouts"  # noqa: S608 (constants only)
            f"        where session_type in {_NEW_KINDS} or trainer_id is not null)"
            " + (select count(*) from session_usage"
            "    where trainer_assisted_count > 0 or group_count > 0)"
            " + (select count(*) from trainer_sessions)"
            " + (select count(*) from session_places)"
        )
    ).scalar_one()
    refuse_data_loss(
        holding,
        "row",
        "the downgrade drops trainer-assisted and group workouts, the trainers workouts name,"
        " and each trainer's booked sessions",
        below=revision,
    )
    op.execute(f"delete from workouts where session_type in {_NEW_KINDS}")  # noqa: S608
    op.drop_table("workout_days")
    op.drop_table("session_places")
    op.drop_index("trainer_sessions_by_trainer_status_and_date", table_name="trainer_sessions")
    op.drop_table("trainer_sessions")
    op.drop_constraint("new_counts_not_negative", "session_usage", type_="check")
    for column in ("group_count", "trainer_assisted_count"):
        op.drop_column("session_usage", column)
    op.drop_index("trainer_assisted_by_trainer_and_date", table_name="workouts")
    op.drop_index("workouts_completed_by_day", table_name="workouts")
    op.drop_column("workouts", "trainer_id")
    op.drop_constraint("session_type_is_known", "workouts", type_="check")
    op.create_check_constraint(
        "session_type_is_known", "workouts", "session_type in ('solo', 'trainer-led')"
    )
