"""The service's view of group sessions, from `booking.sessions`: the trainer leading each and
whether it was called off, and what became of each client's place in it (to take a group
workout only from a client taking part, with its trainer).

Group events consumed before this revision were ignored, and an ignored event is not
recorded as processed: `ops replay workouts --topic booking.sessions` applies them (the
one-to-one events come back as duplicates). The downgrade drops the view and forgets the group
events recorded as processed, so that the same replay fills it again after an upgrade:
nothing is lost that the topic does not hold.

Revision ID: 0006
Revises: 0005
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_GROUP_EVENT_TYPES = (
    "GroupSessionScheduled",
    "ParticipantJoined",
    "ParticipantLeft",
    "GroupSessionCompleted",
    "GroupSessionCancelled",
)


def upgrade() -> None:
    op.create_table(
        "group_sessions",
        sa.Column("session_id", sa.BigInteger, primary_key=True),
        sa.Column("trainer_id", sa.BigInteger, nullable=False),
        sa.Column("cancelled", sa.Boolean, nullable=False, server_default=sa.false()),
    )
    op.create_table(
        "group_places",
        sa.Column(
            "session_id",
            sa.BigInteger,
            sa.ForeignKey("group_sessions.session_id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("user_id", sa.BigInteger, primary_key=True),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("joined_or_left_at", sa.DateTime(timezone=True)),
        sa.CheckConstraint(
            "status in ('joined', 'left', 'attended', 'no_show', 'cancelled')",
            name="status_is_known",
        ),
    )


def downgrade() -> None:
    op.drop_table("group_places")
    op.drop_table("group_sessions")
    op.execute(
        sa.text("delete from processed_events where event_type = any(:types)").bindparams(
            types=list(_GROUP_EVENT_TYPES)
        )
    )
