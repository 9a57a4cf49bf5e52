"""Who may do what with sessions: the contract's "Identity and access (HTTP)" for booking.
No I/O here.

Booking knows whom a trainer trains from its own store: a session's `trainerId`. Staff and
other platform services act on every session; a client on their own; a trainer on the
sessions they train. A session the caller may not see reads as missing (404), so ids
cannot be walked to learn which exist.

Group sessions: a trainer schedules their own, staff and services anyone's. Their trainer,
staff and services see them whole and complete, cancel or move them. A client sees every
group session still scheduled (the timetable they join from) and any they have or had a
place in, but of its places only their own: who else takes part is not theirs to know. A
client takes and gives up their own place; the session's trainer, staff and services
anyone's.
"""

from __future__ import annotations

from collections.abc import Sequence

from booking.models import GroupParticipant, GroupSession, TrainingSession
from booking.rules import GroupSessionStatus
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
SCHEDULE_RULE = "a trainer schedules group sessions only as their trainer; clients never"
PLACE_RULE = (
    "a client takes and gives up only their own place; the session's trainer and staff anyone's"
)
CHANGE_GROUP_RULE = "only its trainer or staff complete, cancel or reschedule a group session"


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


def may_schedule_group(caller: Caller, *, trainer_id: int) -> bool:
    return caller.sees_everything or caller.is_trainer(trainer_id)


def may_run_group(caller: Caller, group: GroupSession) -> bool:
    """Staff, services and the group session's trainer: who see it whole and change it."""
    return caller.sees_everything or caller.is_trainer(group.trainer_id)


def may_see_group(caller: Caller, group: GroupSession) -> bool:
    if may_run_group(caller, group):
        return True
    client = caller.client_id
    return client is not None and (
        group.current_status is GroupSessionStatus.SCHEDULED or group.place_of(client) is not None
    )


def may_take_place(caller: Caller, group: GroupSession, user_id: int) -> bool:
    """Take or give up client `user_id`'s place."""
    return may_run_group(caller, group) or caller.is_client(user_id)


def places_shown(caller: Caller, group: GroupSession) -> Sequence[GroupParticipant]:
    """The places of a group session `caller` may see: every one, or only their own."""
    if may_run_group(caller, group):
        return group.participants
    return [p for p in group.participants if caller.is_client(p.user_id)]
