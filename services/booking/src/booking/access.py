"""Who may do what with sessions: the contract's "Identity and access (HTTP)" for booking.
No I/O here.

Booking knows whom a trainer trains from its own store: a session's `trainerId`. Staff and
other platform services act on every session; a client on their own; a trainer on the
sessions they train. A session the caller may not see reads as missing (404), so ids
cannot be walked to learn which exist.
"""

from __future__ import annotations

from booking.models import TrainingSession
from contracts.sessions import SessionStatus
from servicekit.auth import Caller

#: What a session's own client may do to it: call it off, or move it to another date
#: (`None` below). Starting, completing and marking a no-show are its trainer's.
CLIENT_CHANGES: frozenset[SessionStatus | None] = frozenset({SessionStatus.CANCELLED, None})

BOOKING_RULE = "a client books only for themselves, a trainer only as the session's trainer"
WITHOUT_CREDIT_RULE = "only staff and platform services may book without credit"
CHANGE_RULE = (
    "a client may only cancel or reschedule their own session; starting, completing and "
    "marking a no-show are for its trainer or staff"
)


def may_book(caller: Caller, *, user_id: int, trainer_id: int) -> bool:
    return caller.sees_everything or caller.is_client(user_id) or caller.is_trainer(trainer_id)


def may_book_without_credit(caller: Caller) -> bool:
    """Staff and services may book for a client with nothing available (they say so)."""
    return caller.sees_everything


def may_see(caller: Caller, session: TrainingSession) -> bool:
    return (
        caller.sees_everything
        or caller.is_client(session.user_id)
        or caller.is_trainer(session.trainer_id)
    )


def may_change(caller: Caller, session: TrainingSession, status: SessionStatus | None) -> bool:
    """`status` None: a new date."""
    if caller.sees_everything or caller.is_trainer(session.trainer_id):
        return True
    return caller.is_client(session.user_id) and status in CLIENT_CHANGES
