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

A group session (`GroupSessionBook`, part of the same book) is `scheduled` with room for
`capacity` clients, who take places one by one; it ends `completed` (each place attended or
a no-show) or `cancelled` (the places stay as they were: credits releases them). It shares
the session ids of one-to-one sessions, so an id is either kind's, never both.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import ClassVar, Protocol
from uuid import UUID

from contracts.events import (
    MAX_GROUP_SIZE,
    Balance,
    GrantedPackage,
    GroupSessionCancelled,
    GroupSessionCompleted,
    GroupSessionScheduled,
    PackageType,
    ParticipantJoined,
    ParticipantLeft,
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


# --- group sessions -----------------------------------------------------------------------


class GroupSessionStatus(StrEnum):
    SCHEDULED = "scheduled"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


class PlaceStatus(StrEnum):
    """A client's place in a group session: taken (`joined`), given up before the session
    (`left`), and once the session is over, `attended` or `no_show`."""

    JOINED = "joined"
    LEFT = "left"
    ATTENDED = "attended"
    NO_SHOW = "no_show"


#: Where a group session may go from each status. A status missing here is final.
GROUP_NEXT_STATUSES: dict[GroupSessionStatus, frozenset[GroupSessionStatus]] = {
    GroupSessionStatus.SCHEDULED: frozenset(
        {GroupSessionStatus.COMPLETED, GroupSessionStatus.CANCELLED}
    ),
}
#: The places that count against a group session's capacity: all but those given up.
HOLDING_A_PLACE = frozenset({PlaceStatus.JOINED, PlaceStatus.ATTENDED, PlaceStatus.NO_SHOW})
#: The capacity of a group session known only from its completion or cancellation, until its
#: schedule says: as many as any group session may take.
STAND_IN_CAPACITY = MAX_GROUP_SIZE


class GroupSessionNotFound(BookingRuleBroken):
    def __init__(self, session_id: int) -> None:
        super().__init__(f"group session {session_id} was never scheduled")


class PlaceNotFound(BookingRuleBroken):
    """A client gives up a place they never took."""

    def __init__(self, session_id: int, user_id: int) -> None:
        super().__init__(f"client {user_id} has no place in group session {session_id}")


class SessionFull(ChangeRefused):
    """Every place of a group session is taken."""


class RejoinRefused(ChangeRefused):
    """A client who gave up their place does not take one again: the ledger has already
    judged their leaving (a late one forfeits), and keeps one place per session and client."""


class NotAParticipant(ChangeRefused):
    """A completion through the API names as a no-show a client who holds no place."""


class AttendanceUntold(BookingRuleBroken):
    """A completion that leaves a participant out: whether they came decides their credit,
    so a completion that does not say is sent back to its producer."""


class GroupFacts(Protocol):
    """What the group rules read of a group session: as a batch holds it
    (`KnownGroupSession`) or as the API reads it (`booking.models.GroupSession`)."""

    @property
    def id(self) -> int: ...

    @property
    def trainer_id(self) -> int: ...

    @property
    def capacity(self) -> int: ...

    @property
    def current_status(self) -> GroupSessionStatus: ...

    @property
    def places_taken(self) -> int: ...

    def place_of(self, user_id: int) -> PlaceStatus | None: ...

    def joined(self) -> list[int]:
        """The clients whose place is taken and not given up, the session not over yet."""
        ...


def refuse_join(group: GroupFacts, user_id: int) -> bool:
    """Raise unless client `user_id` may take a place in `group`; False when they hold one
    already (joining again changes nothing, whatever the session's status since)."""
    place = group.place_of(user_id)
    if place is PlaceStatus.JOINED:
        return False
    if place is PlaceStatus.LEFT:
        raise RejoinRefused(
            f"client {user_id} left group session {group.id} and cannot join it again"
        )
    status = group.current_status
    if status is not GroupSessionStatus.SCHEDULED:
        raise ChangeRefused(
            f"group session {group.id} is {status}: only a scheduled group session takes"
            " participants"
        )
    if group.places_taken >= group.capacity:
        raise SessionFull(
            f"group session {group.id} is full: {group.places_taken} of {group.capacity}"
            " places taken"
        )
    return True


def refuse_leave(group: GroupFacts, user_id: int) -> bool:
    """Raise unless client `user_id` may give up their place in `group`; False when they
    have left already (leaving again changes nothing)."""
    place = group.place_of(user_id)
    if place is None:
        raise PlaceNotFound(group.id, user_id)
    if place is PlaceStatus.LEFT:
        return False
    status = group.current_status
    if status is not GroupSessionStatus.SCHEDULED:
        raise ChangeRefused(
            f"group session {group.id} is {status}: a participant leaves only a scheduled"
            " group session"
        )
    return True


def refuse_group_status_change(group: GroupFacts, target: GroupSessionStatus) -> bool:
    """Raise unless `group` may move to `target`; False when it is there already (asked or
    announced again, nothing changes)."""
    current = group.current_status
    if current is target:
        return False
    if target in GROUP_NEXT_STATUSES.get(current, frozenset()):
        return True
    if current not in GROUP_NEXT_STATUSES:
        raise ChangeRefused(
            f"group session {group.id} is {current}, which is final: it cannot become {target}"
        )
    raise ChangeRefused(f"group session {group.id} cannot go from {current} to {target}")


def refuse_group_reschedule(group: GroupFacts) -> None:
    """Raise unless `group` may get a new date: only one not over yet."""
    status = group.current_status
    if status is not GroupSessionStatus.SCHEDULED:
        raise ChangeRefused(
            f"group session {group.id} is {status}: only a scheduled group session can be"
            " rescheduled"
        )


def attendance(group: GroupFacts, no_shows: Collection[int]) -> list[int]:
    """Who attended `group`, completed with `no_shows`: every participant still joined but
    them. A no-show who is not a participant still joined is refused (`NotAParticipant`)."""
    joined = sorted(group.joined())
    strangers = sorted(set(no_shows) - set(joined))
    if strangers:
        raise NotAParticipant(
            f"noShows names client {strangers[0]}, who holds no place in group session"
            f" {group.id}: only its participants can be marked as not showing"
        )
    return [user_id for user_id in joined if user_id not in no_shows]


@dataclass(slots=True)
class KnownPlace:
    """A client's place as the events applied so far leave it. `joinedAt` is None for a
    place first named by its session's completion."""

    user_id: int
    status: PlaceStatus
    joined_at: datetime | None = None
    left_at: datetime | None = None
    new: bool = False
    changed: bool = False


@dataclass(slots=True)
class KnownGroupSession:
    """A group session as the events applied so far leave it, with its places by client.
    `new`: not stored yet; `changed`: stored, and changed since (its places say so of
    themselves)."""

    id: int
    trainer_id: int
    session_date: datetime
    duration: int
    capacity: int
    status: GroupSessionStatus
    location: str | None
    notes: str | None
    status_reason: str | None
    #: False while known only from its completion or cancellation: date, duration, capacity
    #: and place are stand-ins until its GroupSessionScheduled arrives.
    schedule_received: bool
    created_at: datetime
    updated_at: datetime
    places: dict[int, KnownPlace] = field(default_factory=dict)
    new: bool = False
    changed: bool = False

    @property
    def current_status(self) -> GroupSessionStatus:
        return self.status

    @property
    def places_taken(self) -> int:
        return sum(1 for place in self.places.values() if place.status in HOLDING_A_PLACE)

    def place_of(self, user_id: int) -> PlaceStatus | None:
        place = self.places.get(user_id)
        return None if place is None else place.status

    def joined(self) -> list[int]:
        return [p.user_id for p in self.places.values() if p.status is PlaceStatus.JOINED]

    def refuse_other_trainer(self, trainer_id: int) -> None:
        """Raise unless `trainer_id` is the trainer this session is scheduled with."""
        if trainer_id != self.trainer_id:
            raise SessionIdTaken(
                f"group session {self.id} is scheduled with trainer {self.trainer_id},"
                f" not trainer {trainer_id}"
            )

    def take_schedule(self, scheduled: GroupSessionScheduled) -> None:
        """The date, length, capacity and place its schedule gives."""
        self.session_date = scheduled.session_date
        self.duration = scheduled.duration
        self.capacity = scheduled.capacity
        self.location = scheduled.location
        self.notes = scheduled.notes
        self.schedule_received = True

    def same_schedule(self, scheduled: GroupSessionScheduled) -> bool:
        return (
            self.session_date,
            self.duration,
            self.capacity,
            self.location,
            self.notes,
        ) == (
            scheduled.session_date,
            scheduled.duration,
            scheduled.capacity,
            scheduled.location,
            scheduled.notes,
        )

    def set_place(self, user_id: int, status: PlaceStatus, *, at: datetime) -> None:
        """Client `user_id`'s place becomes `status` at `at` (taken then, when joining; given
        up then, when leaving); a client without one gets it."""
        place = self.places.get(user_id)
        if place is None:
            place = self.places[user_id] = KnownPlace(user_id, status, new=True)
        place.status = status
        place.changed = True
        if status is PlaceStatus.JOINED:
            place.joined_at = at
        elif status is PlaceStatus.LEFT:
            place.left_at = at


class GroupSessionBook:
    """The group sessions' part of `SessionBook`: the group sessions a batch names (with
    every place of each) beside its one-to-one sessions, which share their ids.

    Events of other producers are applied as they say, within the rules: the same schedule
    again changes nothing, and another under a scheduled id is refused (`SessionIdTaken`);
    a join is judged against the places left, a leave needs a place, and neither moves a
    session that is over. A completion or a cancellation reports what happened: for a
    session never scheduled it makes the session known, in that status, with stand-ins for
    its date (the event's `at`), length, capacity and place until its schedule brings them
    (as a one-to-one status event does). A join or a leave for a session never scheduled is
    refused: only the schedule gives the capacity a place is taken against, and a session's
    events share its partition, so its schedule comes first unless it was itself refused
    (the dead letters are then redriven together). A reschedule names no trainer: one for
    a session never scheduled is refused, as for one-to-one sessions."""

    sessions: dict[int, KnownSession]
    group_sessions: dict[int, KnownGroupSession]

    def schedule_group(self, scheduled: GroupSessionScheduled, *, at: datetime) -> None:
        """A group session scheduled at `at`; the same schedule again changes nothing, and
        one reusing a one-to-one or another group session's id is refused."""
        check_moment("event time", at)
        check_moment("sessionDate", scheduled.session_date)
        self._refuse_one_to_one_id(scheduled.session_id)
        group = self.group_sessions.get(scheduled.session_id)
        if group is None:
            self._add_group(scheduled.session_id, scheduled.trainer_id, at=at).take_schedule(
                scheduled
            )
            return
        group.refuse_other_trainer(scheduled.trainer_id)
        if not group.schedule_received:
            # Completed or cancelled elsewhere before its schedule came: the schedule brings
            # the real date, capacity and place; the status and places stay.
            group.take_schedule(scheduled)
            group.updated_at = at
            group.changed = True
        elif not group.same_schedule(scheduled):
            raise SessionIdTaken(
                f"group session {scheduled.session_id} is already scheduled for"
                f" {group.session_date.astimezone(UTC).isoformat()} ({group.duration} min,"
                f" {group.capacity} places); a schedule for"
                f" {scheduled.session_date.isoformat()} ({scheduled.duration} min,"
                f" {scheduled.capacity} places) cannot reuse its id"
            )

    def join(self, joined: ParticipantJoined) -> None:
        """A client takes a place at the event's `at`. Its `sessionDate` is the ledger's
        copy: the session's own date comes from its schedule and reschedules."""
        check_moment("at", joined.at)
        group = self._group(joined.session_id, joined.trainer_id)
        if refuse_join(group, joined.user_id):
            group.set_place(joined.user_id, PlaceStatus.JOINED, at=joined.at)

    def leave(self, left: ParticipantLeft) -> None:
        """A client gives up their place at the event's `at`; its reason travels with the
        event (credits and analytics read it), not with the place."""
        check_moment("at", left.at)
        group = self._group(left.session_id, left.trainer_id)
        if refuse_leave(group, left.user_id):
            group.set_place(left.user_id, PlaceStatus.LEFT, at=left.at)

    def complete_group(self, completed: GroupSessionCompleted) -> None:
        """The session took place: each client named takes the place the event says,
        whether they had one or not (the event reports who came); every participant still
        joined must be named (`AttendanceUntold`)."""
        check_moment("at", completed.at)
        group = self._reported(completed.session_id, completed.trainer_id, at=completed.at)
        if not refuse_group_status_change(group, GroupSessionStatus.COMPLETED):
            return
        untold = sorted(set(group.joined()) - {*completed.attended, *completed.no_shows})
        if untold:
            raise AttendanceUntold(
                f"group session {group.id} completed without saying whether client"
                f" {untold[0]} attended: every participant is in attended or noShows"
            )
        self._move_group(group, GroupSessionStatus.COMPLETED, at=completed.at, reason=None)
        for user_id in completed.attended:
            group.set_place(user_id, PlaceStatus.ATTENDED, at=completed.at)
        for user_id in completed.no_shows:
            group.set_place(user_id, PlaceStatus.NO_SHOW, at=completed.at)

    def cancel_group(self, cancelled: GroupSessionCancelled) -> None:
        """The session is called off; its places stay as they were (credits releases them)."""
        check_moment("at", cancelled.at)
        group = self._reported(cancelled.session_id, cancelled.trainer_id, at=cancelled.at)
        if refuse_group_status_change(group, GroupSessionStatus.CANCELLED):
            self._move_group(
                group, GroupSessionStatus.CANCELLED, at=cancelled.at, reason=cancelled.reason
            )

    def reschedule_group(self, rescheduled: SessionRescheduled, *, at: datetime) -> None:
        """A group session given a new date at `at`; the same date changes nothing."""
        group = self.group_sessions[rescheduled.session_id]
        if group.session_date == rescheduled.session_date:
            return
        refuse_group_reschedule(group)
        group.session_date = rescheduled.session_date
        group.updated_at = at
        group.changed = True

    def refuse_group_id(self, session_id: int) -> None:
        """Raise when a one-to-one event names a group session's id."""
        group = self.group_sessions.get(session_id)
        if group is not None:
            raise SessionIdTaken(
                f"session {session_id} is a group session with trainer {group.trainer_id},"
                " not a one-to-one session"
            )

    def groups_to_write(self) -> list[KnownGroupSession]:
        """The group sessions created or changed, in the order they were loaded or created."""
        return [g for g in self.group_sessions.values() if g.new or g.changed]

    def places_to_write(self) -> list[tuple[int, KnownPlace]]:
        """The places taken or changed, each with its session's id."""
        return [
            (group.id, place)
            for group in self.group_sessions.values()
            for place in group.places.values()
            if place.new or place.changed
        ]

    def _refuse_one_to_one_id(self, session_id: int) -> None:
        session = self.sessions.get(session_id)
        if session is not None:
            raise SessionIdTaken(
                f"session {session_id} is a one-to-one session booked for client"
                f" {session.user_id} with trainer {session.trainer_id}, not a group session"
            )

    def _group(self, session_id: int, trainer_id: int) -> KnownGroupSession:
        """The group session an event about one of its places names, with that trainer."""
        self._refuse_one_to_one_id(session_id)
        group = self.group_sessions.get(session_id)
        if group is None:
            raise GroupSessionNotFound(session_id)
        group.refuse_other_trainer(trainer_id)
        return group

    def _reported(self, session_id: int, trainer_id: int, *, at: datetime) -> KnownGroupSession:
        """The group session a completion or cancellation names; one never scheduled is
        known from here on, scheduled with stand-ins, for the event to move it."""
        if session_id not in self.group_sessions and session_id not in self.sessions:
            return self._add_group(session_id, trainer_id, at=at)
        return self._group(session_id, trainer_id)

    def _move_group(
        self,
        group: KnownGroupSession,
        status: GroupSessionStatus,
        *,
        at: datetime,
        reason: str | None,
    ) -> None:
        group.status = status
        group.status_reason = reason
        group.updated_at = at
        group.changed = True

    def _add_group(self, session_id: int, trainer_id: int, *, at: datetime) -> KnownGroupSession:
        """A group session first heard of at `at`, with stand-ins for its schedule's details."""
        group = KnownGroupSession(
            id=session_id,
            trainer_id=trainer_id,
            session_date=at,
            duration=DEFAULT_DURATION,
            capacity=STAND_IN_CAPACITY,
            status=GroupSessionStatus.SCHEDULED,
            location=None,
            notes=None,
            status_reason=None,
            schedule_received=False,
            created_at=at,
            updated_at=at,
            new=True,
        )
        self.group_sessions[session_id] = group
        return group


@dataclass
class SessionBook(GroupSessionBook):
    """The sessions a batch names (loaded before its first event) and the ledger's verdicts
    it brings; its events change them in their order. Decide only on events it was loaded
    for."""

    sessions: dict[int, KnownSession] = field(default_factory=dict)
    credit_marks: dict[int, CreditMark] = field(default_factory=dict)
    #: Each client's available credits, as the batch's latest balance for them says.
    available: dict[int, int] = field(default_factory=dict)
    #: The unlimited packages the batch's grants opened, by package id.
    unlimited: dict[UUID, UnlimitedPackage] = field(default_factory=dict)
    #: The group sessions the batch names, with their places (`GroupSessionBook`).
    group_sessions: dict[int, KnownGroupSession] = field(default_factory=dict)

    def book(self, booked: SessionBooked, *, at: datetime) -> None:
        """A session booked at `at`; the same booking again changes nothing, and one
        reusing a booked session's id is refused (`SessionIdTaken`)."""
        check_moment("event time", at)
        check_moment("sessionDate", booked.session_date)
        self.refuse_group_id(booked.session_id)
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
        self.refuse_group_id(moved.session_id)
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
        """A booked session (or a group session) given a new date at `at`; the same date
        changes nothing."""
        check_moment("event time", at)
        check_moment("sessionDate", rescheduled.session_date)
        if rescheduled.session_id in self.group_sessions:
            self.reschedule_group(rescheduled, at=at)
            return
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
