"""The rules of a booked session, in the business's words. No I/O here.

A session is booked `scheduled`; it may start (`in_progress`) and then be `completed`; it may
be `cancelled` before it ends; a client who never turns up makes it a `no_show`. Completed,
cancelled and no-show sessions are over: nothing moves them again.

`SessionBook` is what a batch of events decides on: the sessions it names, as the store
loaded them, the ledger's verdicts on their credits, and what the ledger says of each
client's credits. Every change to a session, the API's own included, is decided here from
its event, so a rebuild gives the very same rows.

`CreditStanding` is what booking knows of one client's credits when the API books: a client
with nothing available and no unlimited package valid at the session's date is refused.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import ClassVar
from uuid import UUID

from contracts.events import (
    Balance,
    GrantedPackage,
    PackageType,
    SessionBooked,
    SessionRescheduled,
    SessionStatusEvent,
)
from contracts.session_ids import SESSION_ID_TAKEN
from contracts.sessions import STATUS_AFTER, SessionStatus, booked_for_someone_else
from servicekit.domain import RuleBroken

#: Where a session may go from each status. A status missing here is final.
NEXT_STATUSES: dict[SessionStatus, frozenset[SessionStatus]] = {
    SessionStatus.SCHEDULED: frozenset(
        {SessionStatus.IN_PROGRESS, SessionStatus.CANCELLED, SessionStatus.NO_SHOW}
    ),
    SessionStatus.IN_PROGRESS: frozenset({SessionStatus.COMPLETED, SessionStatus.CANCELLED}),
}

#: A change the API refuses but accepts when another platform service reports it: a session
#: completed at a kiosk whose start nobody recorded still happened (and credits bills it).
REPORTED_SKIPS = frozenset({(SessionStatus.SCHEDULED, SessionStatus.COMPLETED)})

DEFAULT_DURATION = 60
#: The longest session the booking API takes, in minutes: a whole working day and then some.
MAX_BOOKED_DURATION = 600

#: Moments outside this window are certainly wrong, and far enough from the ends of what
#: PostgreSQL and Python can represent that every time zone converts them safely.
EARLIEST_MOMENT = datetime(1900, 1, 1, tzinfo=UTC)
LATEST_MOMENT = datetime(9000, 1, 1, tzinfo=UTC)


class BookingRuleBroken(RuleBroken):
    """A change the rules forbid. `reason` says why, for a client or a dead letter."""


class SessionNotFound(BookingRuleBroken):
    def __init__(self, session_id: int) -> None:
        super().__init__(f"session {session_id} was never booked")


class NotPermitted(BookingRuleBroken):
    """The caller's role does not allow this (see `booking.access`)."""


class ChangeRefused(BookingRuleBroken):
    """The session exists, but its state does not allow this change."""


class SessionIdTaken(BookingRuleBroken):
    """An event reuses a session's id for another client, trainer or booking: its producer
    left its block of ids (`contracts.session_ids`), so its dead letters are counted apart."""

    kind: ClassVar[str] = SESSION_ID_TAKEN


class SessionIdsExhausted(BookingRuleBroken):
    """The API's block of session ids is used up (`contracts.session_ids`): 2**40 bookings."""

    def __init__(self) -> None:
        super().__init__("no session id left in the booking API's block of ids")


class NotStorable(BookingRuleBroken):
    """A value the contract allows but no session can hold (an id beyond bigint, ...)."""


class NoCreditAvailable(BookingRuleBroken):
    """The API refuses a booking for a client with nothing to pay with, as far as booking
    knows the ledger (staff and services may book anyway: `allowWithoutCredit`)."""


def refuse_status_change(
    session_id: int, current: SessionStatus, target: SessionStatus, *, reported: bool = False
) -> None:
    """Raise unless a session in `current` may move to `target`. `reported`: the change
    comes from an event on the topic rather than from this service's API."""
    if target in NEXT_STATUSES.get(current, frozenset()):
        return
    if reported and (current, target) in REPORTED_SKIPS:
        return
    if current not in NEXT_STATUSES:
        raise ChangeRefused(
            f"session {session_id} is {current}, which is final: it cannot become {target}"
        )
    allowed = ", ".join(sorted(NEXT_STATUSES[current]))
    raise ChangeRefused(
        f"session {session_id} cannot go from {current} to {target} (from {current} it may "
        f"become {allowed})"
    )


def refuse_reschedule(session_id: int, current: SessionStatus) -> None:
    """Raise unless a session in `current` may get a new date: only one not started yet."""
    if current is not SessionStatus.SCHEDULED:
        raise ChangeRefused(
            f"session {session_id} is {current}: only a scheduled session can be rescheduled"
        )


def check_moment(name: str, moment: datetime) -> None:
    """Raise unless a session can hold `moment` (see `EARLIEST_MOMENT`)."""
    if not EARLIEST_MOMENT <= moment < LATEST_MOMENT:
        raise NotStorable(
            f"{name} {moment.isoformat()} is out of range "
            f"({EARLIEST_MOMENT.year} to {LATEST_MOMENT.year - 1})"
        )


@dataclass(slots=True)
class KnownSession:
    """A session as the events applied so far leave it. `new`: not stored yet; `changed`:
    stored, and changed since."""

    id: int
    user_id: int
    trainer_id: int
    session_date: datetime
    duration: int
    status: SessionStatus
    location: str | None
    notes: str | None
    status_reason: str | None
    #: False while known only from a status event: date, duration and place are stand-ins.
    booking_received: bool
    created_at: datetime
    updated_at: datetime
    new: bool = False
    changed: bool = False

    def refuse_someone_else(self, user_id: int, trainer_id: int) -> None:
        """Raise unless (client, trainer) is whom this session is booked for."""
        mismatch = booked_for_someone_else(
            self.id, booked=(self.user_id, self.trainer_id), named=(user_id, trainer_id)
        )
        if mismatch:
            raise SessionIdTaken(mismatch)

    def take_booking(self, booked: SessionBooked) -> None:
        """The date, length and place its booking gives."""
        self.session_date = booked.session_date
        self.duration = booked.duration
        self.location = booked.location
        self.notes = booked.notes
        self.booking_received = True

    def same_booking(self, booked: SessionBooked) -> bool:
        return (self.session_date, self.duration, self.location, self.notes) == (
            booked.session_date,
            booked.duration,
            booked.location,
            booked.notes,
        )


@dataclass(frozen=True, slots=True)
class CreditMark:
    """What the ledger said of a session's credit. Two flags rather than one: the ledger
    deducts at most once per session and a restoration is final, so "deducted and not
    restored" is the same whichever of the two events comes first."""

    deducted: bool = False
    restored: bool = False


@dataclass(frozen=True, slots=True)
class UnlimitedPackage:
    """An unlimited package of a client, as its grant on the ledger announced it."""

    user_id: int
    #: The end of its validity; None: it never ends.
    valid_until: datetime | None

    def valid_at(self, moment: datetime) -> bool:
        return self.valid_until is None or moment < self.valid_until


@dataclass(frozen=True, slots=True)
class CreditStanding:
    """What booking knows of a client's credits: the `available` of the latest balance the
    ledger announced for them (0 before any) and their unlimited packages."""

    user_id: int
    available: int = 0
    unlimited: tuple[UnlimitedPackage, ...] = ()

    def covers(self, session_date: datetime) -> bool:
        """Whether a credit is available or an unlimited package is valid at the date."""
        return self.available > 0 or any(p.valid_at(session_date) for p in self.unlimited)

    def refuse_booking(self, session_date: datetime, *, overridden: bool = False) -> bool:
        """Raise `NoCreditAvailable` unless the client can pay for a session at
        `session_date` or staff `overridden` the check; True when only the override lets it
        through. Booking learns of a purchase once credits has announced its grant, so the
        reason says a recent one may not have arrived yet."""
        if self.covers(session_date):
            return False
        if overridden:
            return True
        reason = (
            f"client {self.user_id} has no session credits available (available {self.available})"
        )
        ends = [p.valid_until for p in self.unlimited if p.valid_until is not None]
        if ends:
            reason += (
                f", and their unlimited package is valid only until {_utc(max(ends))},"
                f" before the session on {_utc(session_date)}"
            )
        raise NoCreditAvailable(
            reason + "; a purchase reaches booking a moment after credits grants it, so one"
            " just made may not have arrived yet: try again shortly"
        )


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


@dataclass
class SessionBook:
    """The sessions a batch names (loaded before its first event) and the ledger's verdicts
    it brings; its events change them in their order. Decide only on events it was loaded
    for."""

    sessions: dict[int, KnownSession] = field(default_factory=dict)
    credit_marks: dict[int, CreditMark] = field(default_factory=dict)
    #: Each client's available credits, as the batch's latest balance for them says.
    available: dict[int, int] = field(default_factory=dict)
    #: The unlimited packages the batch's grants opened, by package id.
    unlimited: dict[UUID, UnlimitedPackage] = field(default_factory=dict)

    def book(self, booked: SessionBooked, *, at: datetime) -> None:
        """A session booked at `at`; the same booking again changes nothing, and one
        reusing a booked session's id is refused (`SessionIdTaken`)."""
        check_moment("event time", at)
        check_moment("sessionDate", booked.session_date)
        session = self.sessions.get(booked.session_id)
        if session is None:
            self._add(booked, SessionStatus.SCHEDULED, at=at, reason=None).take_booking(booked)
            return
        session.refuse_someone_else(booked.user_id, booked.trainer_id)
        if not session.booking_received:
            # Moved along by another service before its booking came: the booking brings
            # the real date and place; the status it reached stays.
            session.take_booking(booked)
            session.updated_at = at
            session.changed = True
        elif not session.same_booking(booked):
            # Dated in UTC, as the store gives it back, wherever the booking came from.
            raise SessionIdTaken(
                f"session {booked.session_id} is already booked for "
                f"{session.session_date.astimezone(UTC).isoformat()} ({session.duration} min);"
                f" a booking for {booked.session_date.isoformat()} ({booked.duration} min)"
                " cannot reuse its id"
            )

    def move(self, moved: SessionStatusEvent) -> None:
        """A session moved along its lifecycle, as another service (or the API) reports it;
        a session never heard of is known from here on, in the status it reached."""
        check_moment("at", moved.at)
        target = STATUS_AFTER[type(moved)]
        session = self.sessions.get(moved.session_id)
        if session is None:
            # The event names the client and trainer; its booking, when it comes, fills
            # in the date and place.
            self._add(moved, target, at=moved.at, reason=moved.reason)
            return
        session.refuse_someone_else(moved.user_id, moved.trainer_id)
        if session.status is target:
            return  # the status the session already has: announced again, nothing changes
        refuse_status_change(moved.session_id, session.status, target, reported=True)
        session.status = target
        session.status_reason = moved.reason
        session.updated_at = moved.at
        session.changed = True

    def reschedule(self, rescheduled: SessionRescheduled, *, at: datetime) -> None:
        """A booked session given a new date at `at`; the same date changes nothing."""
        check_moment("event time", at)
        check_moment("sessionDate", rescheduled.session_date)
        session = self.sessions.get(rescheduled.session_id)
        if session is None:
            raise SessionNotFound(rescheduled.session_id)
        if session.session_date == rescheduled.session_date:
            return
        refuse_reschedule(rescheduled.session_id, session.status)
        session.session_date = rescheduled.session_date
        session.updated_at = at
        session.changed = True

    def credit_deducted(self, session_id: int) -> None:
        """The ledger deducted the session's credit; a flag once set stays set."""
        restored = self.credit_marks.get(session_id, CreditMark()).restored
        self.credit_marks[session_id] = CreditMark(deducted=True, restored=restored)

    def credit_restored(self, session_id: int) -> None:
        """The ledger gave the session's credit back; final."""
        deducted = self.credit_marks.get(session_id, CreditMark()).deducted
        self.credit_marks[session_id] = CreditMark(deducted=deducted, restored=True)

    def balance_announced(self, user_id: int, balance: Balance) -> None:
        """A balance is a running figure: the client's latest replaces what came before
        (a client's ledger events come in their order: the topic is keyed by client)."""
        self.available[user_id] = balance.available

    def package_granted(self, user_id: int, package: GrantedPackage) -> None:
        """Keeps an unlimited package; the others show in the balance."""
        if package.package_type is PackageType.UNLIMITED:
            self.unlimited[package.package_id] = UnlimitedPackage(user_id, package.valid_until)

    def to_write(self) -> list[KnownSession]:
        """The sessions created or changed, in the order they were loaded or created."""
        return [s for s in self.sessions.values() if s.new or s.changed]

    def _add(
        self,
        named: SessionBooked | SessionStatusEvent,
        status: SessionStatus,
        *,
        at: datetime,
        reason: str | None,
    ) -> KnownSession:
        """A session first heard of at `at`, with stand-ins for its booking's details."""
        session = KnownSession(
            id=named.session_id,
            user_id=named.user_id,
            trainer_id=named.trainer_id,
            session_date=at,
            duration=DEFAULT_DURATION,
            status=status,
            location=None,
            notes=None,
            status_reason=reason,
            booking_received=False,
            created_at=at,
            updated_at=at,
            new=True,
        )
        self.sessions[session.id] = session
        return session
