"""Who may do what with workouts: the contract's "Identity and access (HTTP)" for workouts.
No I/O here.

Workouts knows whom a trainer trains from `booking.sessions`, through its own view of the
booked sessions: a trainer-led workout is one of "the sessions they train" when its booked
session names them as its trainer, a group workout when its group session does. Staff and
other platform services log, read and change every workout. A workout the caller may not
read reads as missing (404).
"""

from __future__ import annotations

import uuid

from contracts.events import SessionType
from servicekit.auth import Caller
from servicekit.domain import RuleBroken
from workouts.rules import BookedSessionFacts, GroupSessionFacts

LOG_RULE = (
    "a client logs only their own workouts; a trainer their own solo workouts, the "
    "trainer-led and group workouts of the sessions they train, and trainer-assisted "
    "workouts naming themselves for clients they train"
)
CHANGE_RULE = (
    "a solo workout is changed only by its owner; a trainer-led or group one by its client "
    "or the trainer of its session; a trainer-assisted one by its client or its trainer"
)


class NotPermitted(RuleBroken):
    """The caller's role does not allow this; the reason says what it allows."""


class SessionNotVisible(RuleBroken):
    """A trainer-led workout names a session the caller cannot be shown to have, or a group
    workout a group session not known here."""

    def __init__(self, session_id: int, *, group: bool = False) -> None:
        missing = (
            f"no group session {session_id} known here (one scheduled"
            if group
            else f"no session {session_id} booked for you (one booked"
        )
        super().__init__(f"{missing} a moment ago may take a moment to arrive: try again)")


class WorkoutNotFound(RuleBroken):
    """No such workout, or one the caller may not read: both read the same."""

    def __init__(self, workout_id: uuid.UUID) -> None:
        super().__init__(f"no workout session {workout_id}")


def may_write(
    caller: Caller, *, owner: int, session_type: SessionType, trainer: int | None
) -> bool:
    """Whether the caller may log or change a workout of `owner`'s trained by `trainer`:
    when logging, the trainer the request names; when changing, its booked session's."""
    if caller.sees_everything:
        return True
    if session_type is SessionType.SOLO:
        return caller.is_user(owner)
    return caller.is_client(owner) or caller.is_trainer(trainer)


def must_train_client(caller: Caller, *, owner: int, session_type: SessionType) -> bool:
    """Whether logging needs the caller to train `owner` (see `may_write` first): a trainer
    logging a trainer-assisted workout, which names no session to show it. (A trainer-led
    workout shows it by its session: `may_name_session`.)"""
    return (
        session_type is SessionType.TRAINER_ASSISTED
        and not caller.sees_everything
        and not caller.is_client(owner)
    )


def may_name_session(caller: Caller, session: BookedSessionFacts | None) -> bool:
    """Whether the caller may log a trainer-led workout for this booked session (None: not
    known here). Staff and services may name one not known yet: its booking may still be on
    its way, and credits waits for it. A client or trainer only one known to be theirs."""
    if caller.sees_everything:
        return True
    return session is not None and (
        caller.is_client(session.user_id) or caller.is_trainer(session.trainer_id)
    )


def may_name_group_session(caller: Caller, group: GroupSessionFacts | None) -> bool:
    """Whether the caller may log a group workout for this group session (None: not known
    here). Staff and services may name one not known yet, as they may a booked session
    (`may_name_session`); a client or trainer only one known here. A group session is not
    one client's private booking, so whose place it holds and who leads it are the rules'
    to judge (`workouts.rules.check_group_place`), in their own words."""
    return caller.sees_everything or group is not None


def may_read(caller: Caller, *, owner: int, session_trainer: int | None) -> bool:
    """`owner`: the workout's user; `session_trainer`: its booked session's trainer."""
    return caller.sees_everything or caller.is_user(owner) or caller.is_trainer(session_trainer)
