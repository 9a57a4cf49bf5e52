"""What the workouts service does with the events it consumes: it keeps its view of booked
sessions from `booking.sessions` (reschedules change nothing it needs, so it ignores them),
and stores workouts from its own `workouts.workout-sessions`, which is how a rebuild
restores them (live, its own events come back already applied).

Each batch's handlers share one `BatchChanges`, loaded for the sessions and workouts the
batch names and written once they have all run."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from contracts.envelope import Event
from contracts.events import (
    EventPayload,
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
from workouts.booked_sessions import SessionsSeen
from workouts.logbook import WorkoutChanges
from workouts.rules import BookedSessionFacts, SessionMismatch, SessionStatus

SESSION_STATUS_OF: dict[type[SessionStatusEvent], SessionStatus] = {
    SessionStarted: SessionStatus.IN_PROGRESS,
    SessionCompleted: SessionStatus.COMPLETED,
    SessionCancelled: SessionStatus.CANCELLED,
    SessionNoShow: SessionStatus.NO_SHOW,
}


@dataclass(frozen=True, slots=True)
class BatchChanges:
    """What one batch's handlers share: the sessions and the workouts it names."""

    sessions: SessionsSeen
    workouts: WorkoutChanges

    @classmethod
    async def load(cls, session: AsyncSession, batch: Sequence[Event[Any]]) -> BatchChanges:
        # Workouts are locked before sessions, in the order the API's status changes lock
        # them, so that the two never wait for each other the wrong way round.
        workouts = await WorkoutChanges.load(
            session,
            (
                event.payload.workout_id
                for event in batch
                if isinstance(event.payload, WorkoutLogged | WorkoutStatusChanged)
            ),
        )
        reports = (_report_of(event.payload) for event in batch)
        sessions = await SessionsSeen.load(session, (r for r in reports if r is not None))
        return cls(sessions, workouts)

    async def write(self) -> None:
        await self.workouts.write()
        await self.sessions.write()


def register(consumer: IdempotentConsumer) -> None:
    """Attach the workouts handlers to the service's consumer."""
    changes_of = consumer.share_per_batch(BatchChanges.load)

    async def on_session_event(session: AsyncSession, event: Event[Any]) -> None:
        report = _report_of(event.payload)
        assert report is not None  # registered for session events only
        try:
            changes_of(session).sessions.seen(report)
        except SessionMismatch as mismatch:
            raise Rejected(str(mismatch)) from None

    consumer.on(SessionBooked)(on_session_event)
    for status_event in SESSION_STATUS_OF:
        consumer.on(status_event)(on_session_event)

    @consumer.on(WorkoutLogged)
    async def on_workout_logged(session: AsyncSession, event: Event[WorkoutLogged]) -> None:
        changes_of(session).workouts.logged(event)

    @consumer.on(WorkoutStatusChanged)
    async def on_workout_status_changed(
        session: AsyncSession, event: Event[WorkoutStatusChanged]
    ) -> None:
        changes_of(session).workouts.status_changed(event)


def _report_of(payload: EventPayload) -> BookedSessionFacts | None:
    """What a `booking.sessions` event tells of its session; None for any other event."""
    if isinstance(payload, SessionBooked):
        status = SessionStatus.SCHEDULED
    elif isinstance(payload, SessionStatusEvent):
        status = SESSION_STATUS_OF[type(payload)]
    else:
        return None
    return BookedSessionFacts(
        session_id=payload.session_id,
        user_id=payload.user_id,
        trainer_id=payload.trainer_id,
        status=status,
    )
