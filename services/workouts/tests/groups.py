"""Group session events as booking publishes them on `booking.sessions`, for workouts' tests:
one group session (`GROUP`) led by testkit's `TRAINER`, joined before the day and ended on
it, unless a test says otherwise. Pure (contracts and the standard library), so unit tests
use these too."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from contracts import events
from testkit.events import AT, CLIENT, DATE, TRAINER

GROUP = 40
#: Who publishes them.
BOOKING = "/swanstudios/booking"
#: When a client joins, leaves, and joins again, unless told.
JOINED_AT = DATE - timedelta(days=3)
LEFT_AT = DATE - timedelta(days=2)
REJOINED_AT = DATE - timedelta(days=1)


def scheduled(session_id: int = GROUP, trainer_id: int = TRAINER) -> events.GroupSessionScheduled:
    return events.GroupSessionScheduled(
        session_id=session_id, trainer_id=trainer_id, session_date=DATE, capacity=12
    )


def joined(
    user_id: int = CLIENT,
    session_id: int = GROUP,
    trainer_id: int = TRAINER,
    *,
    at: datetime = JOINED_AT,
) -> events.ParticipantJoined:
    return events.ParticipantJoined(
        session_id=session_id, user_id=user_id, trainer_id=trainer_id, session_date=DATE, at=at
    )


def left(
    user_id: int = CLIENT,
    session_id: int = GROUP,
    trainer_id: int = TRAINER,
    *,
    at: datetime = LEFT_AT,
) -> events.ParticipantLeft:
    return events.ParticipantLeft(
        session_id=session_id, user_id=user_id, trainer_id=trainer_id, at=at
    )


def completed(
    attended: Iterable[int] = (CLIENT,),
    no_shows: Iterable[int] = (),
    *,
    session_id: int = GROUP,
    trainer_id: int = TRAINER,
) -> events.GroupSessionCompleted:
    return events.GroupSessionCompleted(
        session_id=session_id,
        trainer_id=trainer_id,
        at=AT,
        attended=list(attended),
        no_shows=list(no_shows),
    )


def called_off(session_id: int = GROUP, trainer_id: int = TRAINER) -> events.GroupSessionCancelled:
    return events.GroupSessionCancelled(
        session_id=session_id, trainer_id=trainer_id, at=AT, reason="Studio closed"
    )


#: A class of four, as booking tells it: two attend, one does not show, one leaves before.
A_CLASS = [
    scheduled(),
    *(joined(user_id) for user_id in (CLIENT, 5, 6, 7)),
    left(7),
    completed(attended=[CLIENT, 5], no_shows=[6]),
]
#: How each place in `A_CLASS` ends.
A_CLASS_PLACES = {CLIENT: "attended", 5: "attended", 6: "no_show", 7: "left"}


def group_workout(
    user_id: int = CLIENT, session_id: int = GROUP, trainer_id: int = TRAINER, **details: Any
) -> events.WorkoutLogged:
    """A group workout as workouts announces it (a fresh id unless `details` gives one)."""
    return events.WorkoutLogged(
        **{
            "workout_id": uuid.uuid4(),
            "title": "Circuit class",
            "date": DATE,
            "status": events.WorkoutStatus.COMPLETED,
            **details,
        },
        user_id=user_id,
        session_type=events.SessionType.GROUP,
        session_id=session_id,
        trainer_id=trainer_id,
    )
