"""Tables of the credits service.

The ledger is append-only: entries are inserted, never updated or deleted. Each entry's id is
derived from its business key (a purchase, a session's deduction, forfeit or restoration, a
package's expiry), so the primary key itself makes every business action happen at most
once, whoever asks for it and however often. `balances` and `packages` are kept in the same
transaction as each entry, and `remaining` is a generated column, so it can never disagree
with `total - used - expired`.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Computed,
    Date,
    DateTime,
    Index,
    Integer,
    Text,
    false,
    func,
    text,
    true,
)
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from credits.rules import CHARGES, RETURNS, EntryKind
from servicekit.tables import APPEND_ONLY

ENTRY_KINDS = tuple(EntryKind)
#: Entries about one session.
SESSION_KINDS = tuple(sorted(CHARGES | RETURNS))


def _quoted(values: tuple[str, ...]) -> str:
    return ", ".join(f"'{value}'" for value in values)


class Base(DeclarativeBase):
    pass


class LedgerEntry(Base):
    __tablename__ = "ledger_entries"
    __table_args__ = (
        CheckConstraint(f"kind in ({_quoted(ENTRY_KINDS)})", name="kind_is_known"),
        # A charge takes one credit, or none when an unlimited package pays; a return gives
        # back what its charge took.
        CheckConstraint(
            "(kind = 'grant' and amount >= 0)"
            " or (kind in ('deduction', 'forfeit') and amount in (-1, 0))"
            " or (kind in ('restoration', 'waiver') and amount in (0, 1))"
            " or (kind = 'expiry' and amount < 0)"
            " or (kind = 'solo' and amount = 0)",
            name="amount_fits_kind",
        ),
        CheckConstraint(
            f"kind not in ({_quoted(SESSION_KINDS)}) or session_id is not null",
            name="session_entries_name_a_session",
        ),
        # The rule of the platform, as a constraint: one deduction per session, ever (per
        # client and session: a group session's clients each have a place of their own).
        Index(
            "one_deduction_per_place",
            "session_id",
            "user_id",
            unique=True,
            postgresql_where=text("kind = 'deduction'"),
        ),
        Index(
            "one_restoration_per_place",
            "session_id",
            "user_id",
            unique=True,
            postgresql_where=text("kind = 'restoration'"),
        ),
        Index(
            "one_forfeit_per_place",
            "session_id",
            "user_id",
            unique=True,
            postgresql_where=text("kind = 'forfeit'"),
        ),
        Index(
            "one_waiver_per_place",
            "session_id",
            "user_id",
            unique=True,
            postgresql_where=text("kind = 'waiver'"),
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
    #: The package it draws from or gives back to (a grant's own package).
    package_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    cause: Mapped[str | None] = mapped_column(Text)
    reason: Mapped[str | None] = mapped_column(Text)
    #: The event (or API request) that caused this entry.
    caused_by: Mapped[str] = mapped_column(Text)
    #: When it took effect in the business's time: a session's day, a package's purchase
    #: or end. The same on a rebuild, whenever it runs (unlike `recorded_at`).
    effective_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    recorded_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )


class Balance(Base):
    __tablename__ = "balances"

    user_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    total: Mapped[int] = mapped_column(Integer, server_default="0")
    used: Mapped[int] = mapped_column(Integer, server_default="0")
    expired: Mapped[int] = mapped_column(Integer, server_default="0")
    #: Credits reserved by sessions booked and not yet delivered or ended.
    held: Mapped[int] = mapped_column(Integer, server_default="0")
    remaining: Mapped[int] = mapped_column(
        Integer, Computed("total - used - expired", persisted=True)
    )
    #: At or below the running-low threshold (see `Ledger._watch_threshold`).
    low: Mapped[bool] = mapped_column(Boolean, server_default=true())


class Package(Base):
    """A client's package: its terms from the grant that opened it, and what it has paid."""

    __tablename__ = "packages"
    __table_args__ = (Index("packages_by_user", "user_id"),)

    package_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    user_id: Mapped[int] = mapped_column(BigInteger)
    package_type: Mapped[str] = mapped_column(Text)
    sessions: Mapped[int] = mapped_column(Integer)
    solo_allowance: Mapped[int | None] = mapped_column(Integer)
    weekly_cap: Mapped[int | None] = mapped_column(Integer)
    valid_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    purchased_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    purchase_id: Mapped[str | None] = mapped_column(Text)
    name: Mapped[str | None] = mapped_column(Text)
    used: Mapped[int] = mapped_column(Integer, server_default="0")
    expired: Mapped[int] = mapped_column(Integer, server_default="0")
    solo_used: Mapped[int] = mapped_column(Integer, server_default="0")
    closed: Mapped[bool] = mapped_column(Boolean, server_default=false())
    warned: Mapped[bool] = mapped_column(Boolean, server_default=false())


#: Packages whose end is due to be acted on (see `credits.expiry`).
Index(
    "packages_ending",
    Package.valid_until,
    postgresql_where=text("not closed and valid_until is not null"),
)


class PackageWeek(Base):
    """Sessions an unlimited package paid in one week (from Monday), for its weekly cap."""

    __tablename__ = "package_weeks"

    package_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    week: Mapped[date] = mapped_column(Date, primary_key=True)
    sessions: Mapped[int] = mapped_column(Integer)


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
    session_date: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    #: The policy stamped on its booking (both NULL: none, nothing is forfeited).
    late_cancel_hours: Mapped[int | None] = mapped_column(Integer)
    no_show_forfeits: Mapped[bool | None] = mapped_column(Boolean)
    #: When it was cancelled or missed.
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class GroupPlace(Base):
    """A client's place in a group session, from `booking.sessions`: to the ledger, what a
    one-to-one session is (`credits.rules.Place`)."""

    __tablename__ = "group_places"
    __table_args__ = (
        # Whether a trainer trains a client (see `credits.access`).
        Index("group_places_by_trainer_and_client", "trainer_id", "user_id"),
    )

    session_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    user_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    trainer_id: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(Text)
    session_date: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    late_cancel_hours: Mapped[int | None] = mapped_column(Integer)
    no_show_forfeits: Mapped[bool | None] = mapped_column(Boolean)
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


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
    #: For a client's place in a group session (`user_id`'s), not a one-to-one session.
    group_place: Mapped[bool] = mapped_column(Boolean, server_default=false())
    #: When its event says the session was delivered.
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
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
