"""Tables of the analytics service: read models built from `workouts.workout-sessions`,
`credits.ledger` and `booking.sessions`, nothing it owns beyond them (an operator may drop
them and rebuild them by consuming those topics from the beginning).

`workouts` holds what usage needs of each workout: whose it is, its type, its status.
`trainer_clients` holds which clients each trainer trains (see `analytics.access`).
`trainer_sessions` and `session_places` hold the booked sessions (one-to-one and group) of
`booking.sessions` and each client's place in them: each trainer's figures. `workout_days`
holds the studio's completed workouts per day and type, for the studio-wide answer.
`ledger_entries` holds each client's ledger events that moved their credits (the dashboard's
"where did my credits go").
`session_usage` holds one client's current usage: the completed-workout counts (recounted
from `workouts` on every workout event) and the latest credit balance from the ledger (its
remaining and available credits follow from the figures kept: see `rules.ClientUsage`). Its
row is also the lock that serialises every change to one client's usage, so the counts, the
balance and the SessionUsageUpdated events that announce them never interleave.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import BigInteger, CheckConstraint, Date, DateTime, Index, Integer, Text, text
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class Workout(Base):
    __tablename__ = "workouts"
    __table_args__ = (
        CheckConstraint(
            "session_type in ('solo', 'trainer-led', 'trainer-assisted', 'group')",
            name="session_type_is_known",
        ),
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
        # The studio's completed workouts of part of a day (a range's bound inside a day;
        # whole days are read from `workout_days`).
        # (On the day, not the time: an index on the time would tempt the planner away from
        # the one above for a client's range.)
        Index(
            "workouts_completed_by_day",
            text("date(timezone('UTC', workout_date))"),
            postgresql_include=["workout_date", "session_type"],
            postgresql_where=text("status = 'completed'"),
        ),
        # A trainer's completed trainer-assisted workouts over a range.
        Index(
            "trainer_assisted_by_trainer_and_date",
            "trainer_id",
            "workout_date",
            postgresql_where=text("session_type = 'trainer-assisted' and status = 'completed'"),
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
    #: The trainer it names (see migration 0006: None in rows recorded before).
    trainer_id: Mapped[int | None] = mapped_column(BigInteger)


class UserUsage(Base):
    __tablename__ = "session_usage"
    __table_args__ = (
        CheckConstraint("solo_count >= 0 and trainer_led_count >= 0", name="counts_not_negative"),
        CheckConstraint(
            "trainer_assisted_count >= 0 and group_count >= 0", name="new_counts_not_negative"
        ),
        CheckConstraint("credits_used >= 0", name="credits_used_not_negative"),
        CheckConstraint("credits_held >= 0", name="credits_held_not_negative"),
        CheckConstraint("credits_expired >= 0", name="credits_expired_not_negative"),
    )

    user_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    solo_count: Mapped[int] = mapped_column(Integer, server_default="0")
    trainer_led_count: Mapped[int] = mapped_column(Integer, server_default="0")
    trainer_assisted_count: Mapped[int] = mapped_column(Integer, server_default="0")
    group_count: Mapped[int] = mapped_column(Integer, server_default="0")
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


class TrainerSession(Base):
    """A booked session, one-to-one or group, as a trainer's figures need it (see
    `rules.TrainerSession`)."""

    __tablename__ = "trainer_sessions"
    __table_args__ = (
        CheckConstraint("kind in ('one-to-one', 'group')", name="session_kind_is_known"),
        CheckConstraint(
            "status in ('scheduled', 'completed', 'cancelled', 'no_show')",
            name="session_status_is_known",
        ),
        # A trainer's sessions of one status over a range.
        Index(
            "trainer_sessions_by_trainer_status_and_date",
            "trainer_id",
            "status",
            "session_date",
            postgresql_include=["kind"],
        ),
    )

    session_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    #: None only while known from a SessionRescheduled alone.
    kind: Mapped[str | None] = mapped_column(Text)
    trainer_id: Mapped[int | None] = mapped_column(BigInteger)
    session_date: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    status: Mapped[str] = mapped_column(Text)


class SessionPlace(Base):
    """One client's place in a booked session and what became of it (`rules.Place`)."""

    __tablename__ = "session_places"
    __table_args__ = (
        CheckConstraint(
            "outcome in ('booked', 'left', 'attended', 'no_show')", name="place_outcome_is_known"
        ),
    )

    session_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    user_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    outcome: Mapped[str] = mapped_column(Text)


class WorkoutDay(Base):
    """The studio's completed workouts of one UTC day and type: the studio-wide answer adds
    up days rather than count a year's workouts one by one. Kept by the store in the
    transaction that changes the workouts (`rules.UsageBook.day_changes`)."""

    __tablename__ = "workout_days"
    # No check that `completed` stays >= 0: PostgreSQL checks the row an upsert proposes
    # (the change, which may be -1) before it finds the row to add it to.

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    session_type: Mapped[str] = mapped_column(Text, primary_key=True)
    completed: Mapped[int] = mapped_column(Integer)


class LedgerEntry(Base):
    """One ledger event that moved a client's credits, as the dashboard lists it: granted,
    deducted, restored, forfeited or expired, by how much, and what remained after."""

    __tablename__ = "ledger_entries"
    __table_args__ = (
        # A client's latest entries, newest first.
        Index("ledger_entries_by_user_and_time", "user_id", "occurred_at"),
    )

    #: The CloudEvent id of the ledger event (a redelivery or a rebuild writes it once).
    event_id: Mapped[str] = mapped_column(Text, primary_key=True)
    user_id: Mapped[int] = mapped_column(BigInteger)
    #: The event type (`CreditsGranted`, `SessionCreditDeducted`, ...).
    entry_type: Mapped[str] = mapped_column(Text)
    #: What it did to the client's remaining credits (+3 granted, -1 deducted, ...).
    change: Mapped[int] = mapped_column(Integer)
    #: The credits remaining after it.
    remaining: Mapped[int] = mapped_column(Integer)
    session_id: Mapped[int | None] = mapped_column(BigInteger)
    #: Why, as the event says (a deduction's or forfeit's cause, a restoration's reason).
    detail: Mapped[str | None] = mapped_column(Text)
    occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
