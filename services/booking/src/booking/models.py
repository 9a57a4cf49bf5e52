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
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Index,
    Integer,
    Text,
    Uuid,
    and_,
    false,
    func,
    select,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, column_property, mapped_column

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
