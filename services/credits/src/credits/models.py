"""Tables of the credits service.

The ledger is append-only: entries are inserted, never updated or deleted. Each entry's id is
derived from its business key (a purchase, a session's deduction or its restoration), so the
primary key itself makes every business action happen at most once, whoever asks for it and
however often. `balances` is kept in the same transaction as each entry, and `remaining` is a
generated column, so it can never disagree with `total - used`.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Computed,
    DateTime,
    Index,
    Integer,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from servicekit.tables import APPEND_ONLY


class Base(DeclarativeBase):
    pass


class LedgerEntry(Base):
    __tablename__ = "ledger_entries"
    __table_args__ = (
        CheckConstraint("kind in ('grant', 'deduction', 'restoration')", name="kind_is_known"),
        CheckConstraint(
            "(kind = 'grant' and amount > 0) or (kind = 'deduction' and amount = -1)"
            " or (kind = 'restoration' and amount = 1)",
            name="amount_fits_kind",
        ),
        CheckConstraint(
            "kind = 'grant' or session_id is not null", name="session_entries_name_a_session"
        ),
        # The rule of the platform, as a constraint: one deduction per session, ever.
        Index(
            "one_deduction_per_session",
            "session_id",
            unique=True,
            postgresql_where=text("kind = 'deduction'"),
        ),
        Index(
            "one_restoration_per_session",
            "session_id",
            unique=True,
            postgresql_where=text("kind = 'restoration'"),
        ),
        Index(
            "one_grant_per_purchase",
            "purchase_id",
            unique=True,
            postgresql_where=text("kind = 'grant' and purchase_id is not null"),
        ),
        Index("ledger_entries_by_user", "user_id", "seq"),
        # Append-only by privilege too: the service's runtime role may insert and read.
        {"info": {APPEND_ONLY: True}},
    )

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    #: Insertion order, for "oldest first" listings.
    seq: Mapped[int] = mapped_column(BigInteger, server_default=text("nextval('ledger_seq')"))
    user_id: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(Text)
    amount: Mapped[int] = mapped_column(Integer)
    purchase_id: Mapped[str | None] = mapped_column(Text)
    session_id: Mapped[int | None] = mapped_column(BigInteger)
    trainer_id: Mapped[int | None] = mapped_column(BigInteger)
    workout_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    cause: Mapped[str | None] = mapped_column(Text)
    reason: Mapped[str | None] = mapped_column(Text)
    #: The event (or API request) that caused this entry.
    caused_by: Mapped[str] = mapped_column(Text)
    recorded_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )


class Balance(Base):
    __tablename__ = "balances"

    user_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    total: Mapped[int] = mapped_column(Integer, server_default="0")
    used: Mapped[int] = mapped_column(Integer, server_default="0")
    remaining: Mapped[int] = mapped_column(Integer, Computed("total - used", persisted=True))


class KnownSession(Base):
    """The credits service's view of booked sessions, from `booking.sessions`."""

    __tablename__ = "sessions"
    __table_args__ = (
        # Whether a trainer trains a client (see `credits.access`).
        Index("sessions_by_trainer_and_client", "trainer_id", "user_id"),
    )

    session_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    user_id: Mapped[int] = mapped_column(BigInteger)
    trainer_id: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(Text)


class PendingDeduction(Base):
    """A deduction asked for before its session's booking arrived ("parked"); applied when
    it does, or withdrawn when its workout is cancelled first (see `WithdrawnDeduction`)."""

    __tablename__ = "pending_deductions"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    session_id: Mapped[int] = mapped_column(BigInteger, index=True)
    user_id: Mapped[int] = mapped_column(BigInteger)
    trainer_id: Mapped[int] = mapped_column(BigInteger)
    workout_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    cause: Mapped[str] = mapped_column(Text)
    caused_by: Mapped[str] = mapped_column(Text)
    #: When it was parked.
    received_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )


class WithdrawnDeduction(Base):
    """A trainer-led workout cancelled while its deduction was parked: it never uses a
    credit. Remembered, and read back from the rejection announcing it when the service is
    rebuilt, so that no order of the inputs charges that workout afterwards."""

    __tablename__ = "withdrawn_deductions"

    workout_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    session_id: Mapped[int] = mapped_column(BigInteger, index=True)
