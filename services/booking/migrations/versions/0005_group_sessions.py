"""Group sessions and each client's place in them.

A group session takes its id from the same ids as a one-to-one session (the `session_ids`
sequence for the API's), so the two tables never share an id. The sessions already booked
stay as they are. Going down refuses while group sessions exist (version 0004 knows none),
unless told to lose them (`-x allow-data-loss=true`); the ids they took stay taken.

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
    op.create_table(
        "group_sessions",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("trainer_id", sa.BigInteger, nullable=False),
        sa.Column("session_date", sa.DateTime(timezone=True), nullable=False),
        sa.Column("duration", sa.Integer, nullable=False),
        sa.Column("capacity", sa.Integer, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("location", sa.Text),
        sa.Column("notes", sa.Text),
        sa.Column("status_reason", sa.Text),
        sa.Column("schedule_received", sa.Boolean, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "status in ('scheduled', 'completed', 'cancelled')", name="group_status_is_known"
        ),
        sa.CheckConstraint("capacity between 1 and 100", name="capacity_is_a_group_size"),
        sa.CheckConstraint("duration > 0", name="group_duration_is_positive"),
    )
    op.create_index("group_sessions_by_trainer", "group_sessions", ["trainer_id", "session_date"])
    op.create_index("group_sessions_by_date", "group_sessions", ["session_date", "id"])
    op.create_table(
        "group_participants",
        sa.Column(
            "session_id",
            sa.BigInteger,
            sa.ForeignKey("group_sessions.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("user_id", sa.BigInteger, primary_key=True),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("joined_at", sa.DateTime(timezone=True)),
        sa.Column("left_at", sa.DateTime(timezone=True)),
        sa.CheckConstraint(
            "status in ('joined', 'left', 'attended', 'no_show')", name="place_status_is_known"
        ),
    )
    op.create_index("group_participants_by_client", "group_participants", ["user_id", "session_id"])


def downgrade() -> None:
    groups = op.get_bind().scalar(sa.text("select count(*) from group_sessions"))
    refuse_data_loss(
        groups,
        "group session",
        "version 0004 knows no group sessions, and their places would go with them",
        below="0005",
    )
    op.drop_table("group_participants")
    op.drop_table("group_sessions")
