"""Tables of the workouts service.

A workout session owns its exercises, and each exercise its sets, in child tables keyed by
their position (1, 2, ...), so the order a client logged them in is the order they come back.
The database holds the contract's invariants (the session-type rule, known statuses,
nothing negative); the API adds the product's tighter bounds on what a client may send.

`sessions` is this service's view of the sessions booked elsewhere, built from
`booking.sessions`; `group_sessions` and `group_places` its view of group sessions, their
trainer and what became of each client's place. There is no foreign key from a workout to
them: the booking service owns sessions, and a workout may name a session whose booking has
not reached this service yet.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Double,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    Text,
    case,
    exists,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, column_property, mapped_column, relationship

from contracts.events import SESSION_LINK_FIELDS, SessionType

_COLUMN_OF = {
    "sessionId": "session_id",
    "trainerId": "trainer_id",
    "planId": "plan_id",
    "groupSize": "group_size",
}
#: Each session type's columns that must be set and must be empty, as one check.
SESSION_LINK_RULE = " or ".join(
    f"(session_type = '{kind}'"
    + "".join(f" and {_COLUMN_OF[name]} is not null" for name in sorted(required))
    + "".join(f" and {_COLUMN_OF[name]} is null" for name in sorted(absent))
    + ")"
    for kind, (required, absent) in SESSION_LINK_FIELDS.items()
)


class Base(DeclarativeBase):
    pass


class BookedSession(Base):
    """This service's view of a booked session, from `booking.sessions`."""

    __tablename__ = "sessions"
    __table_args__ = (
        CheckConstraint(
            "status in ('scheduled', 'in_progress', 'completed', 'no_show', 'cancelled')",
            name="status_is_known",
        ),
    )

    session_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    user_id: Mapped[int] = mapped_column(BigInteger)
    trainer_id: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(Text)


class GroupSession(Base):
    """This service's view of a group session, from `booking.sessions`: the trainer leading
    it, and whether the studio called it off."""

    __tablename__ = "group_sessions"

    session_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    trainer_id: Mapped[int] = mapped_column(BigInteger)
    cancelled: Mapped[bool] = mapped_column(Boolean, server_default="false")


class GroupPlace(Base):
    """What became of one client's place in a group session (`workouts.rules.PlaceStatus`).
    Changed only under its group session's row lock."""

    __tablename__ = "group_places"
    __table_args__ = (
        CheckConstraint(
            "status in ('joined', 'left', 'attended', 'no_show', 'cancelled')",
            name="status_is_known",
        ),
    )

    session_id: Mapped[int] = mapped_column(
        BigInteger,
        ForeignKey("group_sessions.session_id", ondelete="CASCADE"),
        primary_key=True,
    )
    user_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    status: Mapped[str] = mapped_column(Text)
    #: When the client last joined or left (which of the two stands); None once it ended.
    joined_or_left_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class WorkoutRow(Base):
    __tablename__ = "workout_sessions"
    __table_args__ = (
        CheckConstraint(
            "status in ('planned', 'in_progress', 'completed', 'skipped', 'cancelled')",
            name="status_is_known",
        ),
        CheckConstraint("char_length(title) between 1 and 200", name="title_length"),
        CheckConstraint("duration >= 0", name="duration_not_negative"),
        CheckConstraint("intensity >= 0", name="intensity_not_negative"),
        CheckConstraint(
            "total_weight >= 0 and total_reps >= 0 and total_sets >= 0 and experience_points >= 0",
            name="totals_not_negative",
        ),
        # The contract's rule, as a constraint (`contracts.events.SESSION_LINK_FIELDS`).
        CheckConstraint(SESSION_LINK_RULE, name="session_link_matches_type"),
        Index("workout_sessions_by_user_date", "user_id", "date"),
        Index("workout_sessions_by_user_status_type", "user_id", "status", "session_type"),
        Index("workout_sessions_by_session", "session_id"),
        # A trainer's trainer-assisted workouts, by date.
        Index(
            "workout_sessions_assisted_by_trainer",
            "trainer_id",
            "date",
            postgresql_where=text("session_type = 'trainer-assisted'"),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    user_id: Mapped[int] = mapped_column(BigInteger)
    title: Mapped[str] = mapped_column(Text)
    date: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    duration: Mapped[int | None] = mapped_column(Integer)
    intensity: Mapped[int | None] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(Text, server_default="completed")
    session_type: Mapped[str] = mapped_column(Text, server_default="solo")
    session_id: Mapped[int | None] = mapped_column(BigInteger)
    trainer_id: Mapped[int | None] = mapped_column(BigInteger)
    #: The trainer's plan a trainer-assisted workout follows.
    plan_id: Mapped[str | None] = mapped_column(Text)
    #: How many clients a group workout's session had, as logged.
    group_size: Mapped[int | None] = mapped_column(Integer)
    total_weight: Mapped[float] = mapped_column(Double, server_default="0")
    total_reps: Mapped[int] = mapped_column(BigInteger, server_default="0")
    total_sets: Mapped[int] = mapped_column(Integer, server_default="0")
    experience_points: Mapped[int] = mapped_column(BigInteger, server_default="0")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    #: Whether this service has heard of the workout's booked session, or its group session
    #: for a group workout (false for solo ones): read with the workout, one index lookup.
    #: Kept through a flush: it is no column.
    session_known: Mapped[bool] = column_property(
        case(
            (
                session_type == SessionType.GROUP.value,
                exists().where(GroupSession.session_id == session_id),
            ),
            else_=exists().where(BookedSession.session_id == session_id),
        ),
        expire_on_flush=False,
    )

    exercises: Mapped[list[ExerciseRow]] = relationship(
        order_by="ExerciseRow.position", cascade="all, delete-orphan", lazy="selectin"
    )


class ExerciseRow(Base):
    __tablename__ = "exercises"
    __table_args__ = (
        CheckConstraint("position >= 1", name="position_from_one"),
        CheckConstraint("char_length(name) >= 1", name="name_not_empty"),
    )

    workout_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True),
        ForeignKey("workout_sessions.id", ondelete="CASCADE"),
        primary_key=True,
    )
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(Text)

    sets: Mapped[list[SetRow]] = relationship(
        order_by="SetRow.position", cascade="all, delete-orphan", lazy="selectin"
    )


class SetRow(Base):
    __tablename__ = "exercise_sets"
    __table_args__ = (
        ForeignKeyConstraint(
            ["workout_id", "exercise_position"],
            ["exercises.workout_id", "exercises.position"],
            ondelete="CASCADE",
        ),
        CheckConstraint("position >= 1", name="position_from_one"),
        CheckConstraint("reps >= 0", name="reps_not_negative"),
        CheckConstraint("weight >= 0", name="weight_not_negative"),
    )

    workout_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    exercise_position: Mapped[int] = mapped_column(Integer, primary_key=True)
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    reps: Mapped[int] = mapped_column(Integer)
    #: None when the set used no weight (or none was noted); counts as 0 in the totals.
    weight: Mapped[float | None] = mapped_column(Double)
