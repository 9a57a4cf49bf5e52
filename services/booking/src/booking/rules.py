"""The rules of a booked session, in the business's words. No I/O here.

A session is booked `scheduled`; it may start (`in_progress`) and then be `completed`; it may
be `cancelled` before it ends; a client who never turns up makes it a `no_show`. Completed,
cancelled and no-show sessions are over: nothing moves them again.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum


class SessionStatus(StrEnum):
    SCHEDULED = "scheduled"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    NO_SHOW = "no_show"


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


class BookingRuleBroken(Exception):
    """A change the rules forbid. `reason` says why, for a client or a dead letter."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class SessionNotFound(BookingRuleBroken):
    def __init__(self, session_id: int) -> None:
        super().__init__(f"session {session_id} was never booked")


class NotPermitted(BookingRuleBroken):
    """The caller's role does not allow this (see `booking.access`)."""


class ChangeRefused(BookingRuleBroken):
    """The session exists, but its state does not allow this change."""


class SessionIdTaken(BookingRuleBroken):
    """An event reuses a session's id for another client, trainer or booking."""


class SessionIdsExhausted(BookingRuleBroken):
    """The API's block of session ids is used up (`contracts.session_ids`): 2**40 bookings."""

    def __init__(self) -> None:
        super().__init__("no session id left in the booking API's block of ids")


class NotStorable(BookingRuleBroken):
    """A value the contract allows but no session can hold (an id beyond bigint, ...)."""


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


def client_and_trainer_mismatch(
    session_id: int,
    *,
    booked: tuple[int, int],
    named: tuple[int, int],
) -> str | None:
    """Why an event naming (client, trainer) `named` cannot be about the session booked for
    `booked`; None when it can."""
    if booked == named:
        return None
    return (
        f"session {session_id} is booked for client {booked[0]} with trainer {booked[1]}, "
        f"not client {named[0]} with trainer {named[1]}"
    )


def check_moment(name: str, moment: datetime) -> None:
    if not EARLIEST_MOMENT <= moment < LATEST_MOMENT:
        raise NotStorable(
            f"{name} {moment.isoformat()} is out of range "
            f"({EARLIEST_MOMENT.year} to {LATEST_MOMENT.year - 1})"
        )
