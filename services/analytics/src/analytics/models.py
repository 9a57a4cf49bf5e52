"""Tables of the analytics service: read models built from `workouts.workout-sessions` and
`credits.ledger`, nothing it owns beyond them (an operator may drop them and rebuild them by
consuming those topics from the beginning).

`workouts` holds what usage needs of each workout: whose it is, its type, its status.
`trainer_clients` holds which clients each trainer trains (see `analytics.access`).
`session_usage` holds one client's current usage: the completed-workout counts (recounted
from `workouts` on every workout event) and the latest credit balance from the ledger (its
remaining and available credits follow from the figures kept: see `rules.ClientUsage`). Its
row is also the lock that serialises every change to one client's usage, so the counts, the
balance and the SessionUsageUpdated events that announce them never interleave.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, DateTime, Index, Integer, Text
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class Workout(Base):
    __tablename__ = "workouts"
    __table_args__ = (
        CheckConstraint("session_type in ('solo', 'trainer-led')", name="session_type_is_known"),
        CheckConstraint(
            "status in ('planned', 'in_progress', 'completed', 'skipped', 'cancelled')",
            name="status_is_known",
        ),
        # A client's completed workouts by type, all time or over a range (`?from=&to=`),
        # read from the index alone.
        Index(
            "workouts_by_user_status_and_date",
            "user_id",
            "status",
            "workout_date",
            postgresql_include=["session_type"],
        ),
    )

    workout_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    user_id: Mapped[int] = mapped_column(BigInteger)
    session_type: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(Text)
    #: The event that last described this workout, to trace a count back to its source.
    changed_by: Mapped[str] = mapped_column(Text)
    #: When it took place (its WorkoutLogged's `date`); None for a workout known only from
    #: status changes, or recorded before dates were kept (see migration 0005).
    workout_date: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class UserUsage(Base):
    __tablename__ = "session_usage"
    __table_args__ = (
        CheckConstraint("solo_count >= 0 and trainer_led_count >= 0", name="counts_not_negative"),
        CheckConstraint("credits_used >= 0", name="credits_used_not_negative"),
        CheckConstraint("credits_held >= 0", name="credits_held_not_negative"),
        CheckConstraint("credits_expired >= 0", name="credits_expired_not_negative"),
    )

    user_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    solo_count: Mapped[int] = mapped_column(Integer, server_default="0")
    trainer_led_count: Mapped[int] = mapped_column(Integer, server_default="0")
    credits_total: Mapped[int] = mapped_column(Integer, server_default="0")
    credits_used: Mapped[int] = mapped_column(Integer, server_default="0")
    #: Reserved by sessions booked and not yet delivered.
    credits_held: Mapped[int] = mapped_column(Integer, server_default="0")
    #: Left in packages when their validity ended.
    credits_expired: Mapped[int] = mapped_column(Integer, server_default="0")
    #: When the usage last changed (see `rules.py`); null until it first does.
    as_of: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class TrainerClient(Base):
    """A client a trainer trains: a trainer-led workout or a deducted session credit named
    them together."""

    __tablename__ = "trainer_clients"

    trainer_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    user_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
