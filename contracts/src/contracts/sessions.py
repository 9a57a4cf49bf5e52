"""A booked session's vocabulary, shared by every service that follows `booking.sessions`:
its statuses, the event that moves it to each, the workouts that deliver it, and why an event
cannot be about it."""

from __future__ import annotations

from enum import StrEnum

from contracts.events import (
    SessionCancelled,
    SessionCompleted,
    SessionNoShow,
    SessionStarted,
    SessionStatusEvent,
    WorkoutStatus,
)


class SessionStatus(StrEnum):
    SCHEDULED = "scheduled"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    NO_SHOW = "no_show"


#: The status each lifecycle event moves a session to.
STATUS_AFTER: dict[type[SessionStatusEvent], SessionStatus] = {
    SessionStarted: SessionStatus.IN_PROGRESS,
    SessionCompleted: SessionStatus.COMPLETED,
    SessionCancelled: SessionStatus.CANCELLED,
    SessionNoShow: SessionStatus.NO_SHOW,
}

#: The event that announces a move to each status (a booking announces `scheduled`).
EVENT_MOVING_TO: dict[SessionStatus, type[SessionStatusEvent]] = {
    status: event for event, status in STATUS_AFTER.items()
}

#: A session in one of these statuses was never delivered.
UNDELIVERED_STATUSES = frozenset({SessionStatus.CANCELLED, SessionStatus.NO_SHOW})

#: A trainer-led workout in one of these statuses means its session is being delivered: it
#: uses the session's credit (credits), and needs a session that fits it (workouts).
DELIVERING_WORKOUT_STATUSES = frozenset({WorkoutStatus.IN_PROGRESS, WorkoutStatus.COMPLETED})


def booked_for_someone_else(
    session_id: int, *, booked: tuple[int, int], named: tuple[int, int]
) -> str | None:
    """Why an event naming (client, trainer) `named` cannot be about the session booked for
    (client, trainer) `booked`; None when it can. The same words in every service, so a
    dead letter reads the same whoever wrote it."""
    if booked == named:
        return None
    return (
        f"session {session_id} is booked for client {booked[0]} with trainer {booked[1]}, "
        f"not client {named[0]} with trainer {named[1]}"
    )
