"""What clients and trainers ask of booking through its API, in the business's words.

Each use case runs in the caller's transaction: it checks the request against the session
as it stands, announces the change in the outbox, marks that event as already applied by
booking's own consumer (it comes back on `booking.sessions`), and applies it to the store
through the projection, the way a rebuild would.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from booking.access import BOOKING_RULE, CHANGE_RULE, may_book, may_change, may_see
from booking.models import TrainingSession
from booking.projection import Projection
from booking.rules import (
    NotPermitted,
    SessionNotFound,
    SessionStatus,
    refuse_reschedule,
    refuse_status_change,
)
from contracts.envelope import parse_payload
from contracts.events import (
    EventPayload,
    SessionBooked,
    SessionCancelled,
    SessionCompleted,
    SessionNoShow,
    SessionRescheduled,
    SessionStarted,
    SessionStatusEvent,
)
from servicekit.auth import Caller
from servicekit.consumer import IdempotentConsumer
from servicekit.outbox import Outbox

#: The event that announces a session reaching each status (booking announces `scheduled`
#: as SessionBooked, and nothing moves a session back to it).
ANNOUNCED_BY: dict[SessionStatus, type[SessionStatusEvent]] = {
    SessionStatus.IN_PROGRESS: SessionStarted,
    SessionStatus.COMPLETED: SessionCompleted,
    SessionStatus.CANCELLED: SessionCancelled,
    SessionStatus.NO_SHOW: SessionNoShow,
}


class Bookings:
    def __init__(
        self, session: AsyncSession, outbox: Outbox, own_consumer: IdempotentConsumer
    ) -> None:
        self.session = session
        self.outbox = outbox
        self.own_consumer = own_consumer
        self.projection = Projection(session)

    async def book(
        self,
        *,
        by: Caller,
        user_id: int,
        trainer_id: int,
        session_date: datetime,
        duration: int,
        location: str | None,
        notes: str | None,
    ) -> TrainingSession:
        """Book a session for a client with a trainer; it starts out scheduled."""
        if not may_book(by, user_id=user_id, trainer_id=trainer_id):
            raise NotPermitted(BOOKING_RULE)
        session_id = await self.projection.allocate_id()
        await self._announce(
            SessionBooked(
                session_id=session_id,
                user_id=user_id,
                trainer_id=trainer_id,
                session_date=session_date,
                duration=duration,
                location=location,
                notes=notes,
            )
        )
        return await self.projection.get(session_id)

    async def change_status(
        self, session_id: int, target: SessionStatus, *, by: Caller, reason: str | None = None
    ) -> TrainingSession:
        """Move a session along its lifecycle. Asking for the status it already has changes
        nothing and announces nothing, so a client may safely retry."""
        session = await self._to_change(session_id, target, by=by)
        if session.current_status is target:
            return session
        refuse_status_change(session_id, session.current_status, target)
        await self._announce(
            ANNOUNCED_BY[target](
                session_id=session_id,
                user_id=session.user_id,
                trainer_id=session.trainer_id,
                at=datetime.now(UTC),
                reason=reason,
            )
        )
        return await self.projection.get(session_id)

    async def reschedule(
        self, session_id: int, session_date: datetime, *, by: Caller
    ) -> TrainingSession:
        """Give a session that has not started a new date; the same date changes nothing."""
        session = await self._to_change(session_id, None, by=by)
        if session.session_date == session_date:
            return session
        refuse_reschedule(session_id, session.current_status)
        await self._announce(SessionRescheduled(session_id=session_id, session_date=session_date))
        return await self.projection.get(session_id)

    async def _to_change(
        self, session_id: int, target: SessionStatus | None, *, by: Caller
    ) -> TrainingSession:
        """The session, locked, once `by` may make the change (`target` None: a new date).
        One the caller may not see reads as never booked."""
        session = await self.projection.get(session_id, for_update=True)
        if not may_see(by, session):
            raise SessionNotFound(session_id)
        if not may_change(by, session, target):
            raise NotPermitted(CHANGE_RULE)
        return session

    async def _announce(self, payload: EventPayload) -> None:
        event = await self.outbox.add(self.session, payload)
        await self.own_consumer.record_own_event(self.session, event)
        # Applied as it travels (parsed back from its envelope), exactly as a rebuild will.
        await self.projection.apply(parse_payload(event, type(payload)))
