"""Tables of the booking service.

`sessions` is the projection of `booking.sessions`: every row is what the topic's events say,
whoever published them. Ids come with the events; the API takes new ones from the
`session_ids` sequence, which the projection keeps ahead of every id it has seen.

`session_credits` is what `credits.ledger` says about each session's credit. It is a table
of its own, keyed by session id and never joined by a foreign key, because the ledger and
the booking travel on different topics and either may arrive first.

`client_balances` and `unlimited_packages` are what the ledger says of each client's credits
(the latest balance's `available`, the unlimited packages granted): what the API books
against.

`group_sessions` and `group_participants` are the projection of the group sessions on
`booking.sessions` and of each client's place in them. A group session's id comes from the
same ids as a one-to-one session's: an id is in one of the two tables, never both.
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    Text,
    Uuid,
    and_,
    false,
    func,
    select,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, column_property, mapped_column, relationship

from booking.rules import HOLDING_A_PLACE, GroupSessionStatus, PlaceStatus
from contracts.sessions import SessionStatus

SESSION_IDS_SEQUENCE = "session_ids"


class Base(DeclarativeBase):
    pass


class SessionCredit(Base):
    """Whether the credits service deducted a session's credit, and whether it gave it back.

    Two flags rather than one: the ledger deducts at most once per session and a
    restoration is final, so "deducted and not restored" is the same whichever of the two
    events is applied first."""

    __tablename__ = "session_credits"

    session_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    credit_deducted: Mapped[bool] = mapped_column(Boolean, server_default=false())
    credit_restored: Mapped[bool] = mapped_column(Boolean, server_default=false())


class ClientBalance(Base):
    """A client's available credits, as the latest balance the ledger announced says."""

    __tablename__ = "client_balances"

    user_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    available: Mapped[int] = mapped_column(Integer)


class UnlimitedPackageGrant(Base):
    """An unlimited package the ledger granted a client (`CreditsGranted.package`)."""

    __tablename__ = "unlimited_packages"
    __table_args__ = (Index("unlimited_packages_by_client", "user_id"),)

    package_id: Mapped[UUID] = mapped_column(Uuid, primary_key=True)
    user_id: Mapped[int] = mapped_column(BigInteger)
    #: The end of its validity; null: it never ends.
    valid_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class TrainingSession(Base):
    """A trainer-led session: the spec's Session."""

    __tablename__ = "sessions"
    __table_args__ = (
        CheckConstraint(
            "status in ('scheduled', 'in_progress', 'completed', 'cancelled', 'no_show')",
            name="status_is_known",
        ),
        CheckConstraint("duration > 0", name="duration_is_positive"),
        Index("sessions_by_date", "session_date", "id"),
        Index("sessions_by_client", "user_id", "session_date"),
        Index("sessions_by_trainer", "trainer_id", "session_date"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    user_id: Mapped[int] = mapped_column(BigInteger)
    trainer_id: Mapped[int] = mapped_column(BigInteger)
    session_date: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    duration: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(Text)
    location: Mapped[str | None] = mapped_column(Text)
    notes: Mapped[str | None] = mapped_column(Text)
    #: Why the session last changed status (a cancellation's reason), when someone said.
    status_reason: Mapped[str | None] = mapped_column(Text)
    #: False while the session is known only from a status event (another service moved a
    #: session booking never heard of): its date, duration and place are stand-ins until
    #: its SessionBooked arrives.
    booking_received: Mapped[bool] = mapped_column(Boolean)
    #: When the events say the session was booked and last changed, so a rebuild from the
    #: topic gives the same values.
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    session_deducted: Mapped[bool] = column_property(
        func.coalesce(
            select(and_(SessionCredit.credit_deducted, ~SessionCredit.credit_restored))
            .where(SessionCredit.session_id == id)
            .correlate_except(SessionCredit)
            .scalar_subquery(),
            false(),
        )
    )

    @property
    def current_status(self) -> SessionStatus:
        return SessionStatus(self.status)


class GroupSession(Base):
    """A group session: one trainer, room for `capacity` clients, each place a
    `GroupParticipant`."""

    __tablename__ = "group_sessions"
    __table_args__ = (
        CheckConstraint(
            "status in ('scheduled', 'completed', 'cancelled')", name="group_status_is_known"
        ),
        CheckConstraint("capacity between 1 and 100", name="capacity_is_a_group_size"),
        CheckConstraint("duration > 0", name="group_duration_is_positive"),
        Index("group_sessions_by_trainer", "trainer_id", "session_date"),
        Index("group_sessions_by_date", "session_date", "id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    trainer_id: Mapped[int] = mapped_column(BigInteger)
    session_date: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    duration: Mapped[int] = mapped_column(Integer)
    capacity: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(Text)
    location: Mapped[str | None] = mapped_column(Text)
    notes: Mapped[str | None] = mapped_column(Text)
    #: Why the session last changed status (a cancellation's reason), when someone said.
    status_reason: Mapped[str | None] = mapped_column(Text)
    #: False while known only from its completion or cancellation (another service reported
    #: a session booking never heard of): its date, duration, capacity and place are
    #: stand-ins until its GroupSessionScheduled arrives.
    schedule_received: Mapped[bool] = mapped_column(Boolean)
    #: When the events say the session was scheduled and last changed (its places carry
    #: their own times), so a rebuild from the topic gives the same values.
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    participants: Mapped[list[GroupParticipant]] = relationship(
        lazy="selectin", order_by="GroupParticipant.user_id"
    )

    @property
    def current_status(self) -> GroupSessionStatus:
        return GroupSessionStatus(self.status)

    @property
    def places_taken(self) -> int:
        return sum(1 for p in self.participants if p.current_status in HOLDING_A_PLACE)

    def place_of(self, user_id: int) -> PlaceStatus | None:
        return next((p.current_status for p in self.participants if p.user_id == user_id), None)

    def joined(self) -> list[int]:
        return [p.user_id for p in self.participants if p.current_status is PlaceStatus.JOINED]


class GroupParticipant(Base):
    """A client's place in a group session."""

    __tablename__ = "group_participants"
    __table_args__ = (
        CheckConstraint(
            "status in ('joined', 'left', 'attended', 'no_show')", name="place_status_is_known"
        ),
        # A client's group sessions.
        Index("group_participants_by_client", "user_id", "session_id"),
    )

    session_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("group_sessions.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    status: Mapped[str] = mapped_column(Text)
    #: When the client took the place; null for a place first named by the completion.
    joined_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    #: When the client gave it up, if they did.
    left_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    @property
    def current_status(self) -> PlaceStatus:
        return PlaceStatus(self.status)
