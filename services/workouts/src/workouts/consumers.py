"""What the workouts service does with the events it consumes: it keeps its view of booked
sessions from `booking.sessions` (reschedules change nothing it needs, so it ignores them),
and stores workouts from its own `workouts.workout-sessions`, which is how a rebuild
restores them (live, its own events come back already applied)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from contracts.envelope import Event
from contracts.events import (
    SessionBooked,
    SessionCancelled,
    SessionCompleted,
    SessionNoShow,
    SessionStarted,
    SessionStatusEvent,
    WorkoutLogged,
    WorkoutStatusChanged,
)
from servicekit.consumer import IdempotentConsumer, Rejected
from workouts.booked_sessions import BookedSessions
from workouts.logbook import apply_logged, apply_status_change
from workouts.rules import SessionMismatch, SessionStatus

SESSION_STATUS_OF: dict[type[SessionStatusEvent], SessionStatus] = {
    SessionStarted: SessionStatus.IN_PROGRESS,
    SessionCompleted: SessionStatus.COMPLETED,
    SessionCancelled: SessionStatus.CANCELLED,
    SessionNoShow: SessionStatus.NO_SHOW,
}


def register(consumer: IdempotentConsumer) -> None:
    """Attach the workouts handlers to the service's consumer."""

    @consumer.on(SessionBooked)
    async def on_session_booked(session: AsyncSession, event: Event[SessionBooked]) -> None:
        booked = event.payload
        await _session_seen(
            session, booked.session_id, booked.user_id, booked.trainer_id, SessionStatus.SCHEDULED
        )

    async def on_session_moved(session: AsyncSession, event: Event[Any]) -> None:
        moved: SessionStatusEvent = event.payload
        await _session_seen(
            session,
            moved.session_id,
            moved.user_id,
            moved.trainer_id,
            SESSION_STATUS_OF[type(moved)],
        )

    for status_event in SESSION_STATUS_OF:
        consumer.on(status_event)(on_session_moved)

    consumer.on(WorkoutLogged)(apply_logged)
    consumer.on(WorkoutStatusChanged)(apply_status_change)


async def _session_seen(
    session: AsyncSession, session_id: int, user_id: int, trainer_id: int, status: SessionStatus
) -> None:
    try:
        await BookedSessions(session).session_seen(
            session_id=session_id, user_id=user_id, trainer_id=trainer_id, status=status
        )
    except SessionMismatch as mismatch:
        raise Rejected(str(mismatch)) from None
