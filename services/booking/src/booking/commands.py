"""What clients and trainers ask of booking through its API, in the business's words.

Each use case runs in the caller's transaction: it checks the request against the session
as it stands, announces the change in the outbox, marks that event as already applied by
booking's own consumer (it comes back on `booking.sessions`), and applies it the way the
consumer does (`SessionStore`, `HANDLERS`: a batch of one), so a rebuild gives the same rows.

A booking is checked against what booking knows of the client's credits, and carries the
studio's cancellation policy of the moment, by which credits judges the session later.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from booking.access import (
    BOOKING_RULE,
    CHANGE_RULE,
    WITHOUT_CREDIT_RULE,
    may_book,
    may_book_without_credit,
    may_change,
    may_see,
)
from booking.handlers import HANDLERS
from booking.models import TrainingSession
from booking.queries import credit_standing, session_by_id
from booking.rules import NotPermitted, SessionNotFound, refuse_reschedule, refuse_status_change
from booking.store import SessionStore, allocate_id
from contracts.envelope import parse_payload
from contracts.events import CancellationPolicy, EventPayload, SessionBooked, SessionRescheduled
from contracts.sessions import EVENT_MOVING_TO, SessionStatus
from servicekit.auth import Caller
from servicekit.consumer import IdempotentConsumer
from servicekit.outbox import Outbox


@dataclass(frozen=True, slots=True)
class Booked:
    """A session just booked; `without_credit`: only because its booker said so, with
    `available` credits as booking knew them."""

    session: TrainingSession
    without_credit: bool
    available: int


@dataclass(frozen=True, slots=True)
class BookingCommands:
    outbox: Outbox
    #: The service's consumer, which reads its own topic back.
    own_consumer: IdempotentConsumer
    store: SessionStore
    #: The studio's policy, stamped on every booking (None: nothing is forfeited).
    policy: CancellationPolicy | None = None

    async def book(
        self,
        db: AsyncSession,
        *,
        by: Caller,
        user_id: int,
        trainer_id: int,
        session_date: datetime,
        duration: int,
        location: str | None,
        notes: str | None,
        allow_without_credit: bool = False,
    ) -> Booked:
        """Book a session for a client with a trainer; it starts out scheduled. A client
        with nothing available is refused, unless staff or a service allow it."""
        if not may_book(by, user_id=user_id, trainer_id=trainer_id):
            raise NotPermitted(BOOKING_RULE)
        if allow_without_credit and not may_book_without_credit(by):
            raise NotPermitted(WITHOUT_CREDIT_RULE)
        standing = await credit_standing(db, user_id)
        without_credit = standing.refuse_booking(session_date, overridden=allow_without_credit)
        session_id = await allocate_id(db)
        await self._announce(
            db,
            SessionBooked(
                session_id=session_id,
                user_id=user_id,
                trainer_id=trainer_id,
                session_date=session_date,
                duration=duration,
                location=location,
                notes=notes,
                policy=self.policy,
            ),
        )
        return Booked(
            await session_by_id(db, session_id),
            without_credit=without_credit,
            available=standing.available,
        )

    async def change_status(
        self,
        db: AsyncSession,
        session_id: int,
        target: SessionStatus,
        *,
        by: Caller,
        reason: str | None = None,
    ) -> TrainingSession:
        """Move a session along its lifecycle. Asking for the status it already has changes
        nothing and announces nothing, so a client may safely retry."""
        session = await self._to_change(db, session_id, target, by=by)
        if session.current_status is target:
            return session
        refuse_status_change(session_id, session.current_status, target)
        await self._announce(
            db,
            EVENT_MOVING_TO[target](
                session_id=session_id,
                user_id=session.user_id,
                trainer_id=session.trainer_id,
                at=datetime.now(UTC),
                reason=reason,
            ),
        )
        return await session_by_id(db, session_id)

    async def reschedule(
        self, db: AsyncSession, session_id: int, session_date: datetime, *, by: Caller
    ) -> TrainingSession:
        """Give a session that has not started a new date; the same date changes nothing."""
        session = await self._to_change(db, session_id, None, by=by)
        if session.session_date == session_date:
            return session
        refuse_reschedule(session_id, session.current_status)
        await self._announce(
            db, SessionRescheduled(session_id=session_id, session_date=session_date)
        )
        return await session_by_id(db, session_id)

    async def _to_change(
        self, db: AsyncSession, session_id: int, target: SessionStatus | None, *, by: Caller
    ) -> TrainingSession:
        """The session, locked, once `by` may make the change (`target` None: a new date).
        One the caller may not see reads as never booked."""
        session = await session_by_id(db, session_id, for_update=True)
        if not may_see(by, session):
            raise SessionNotFound(session_id)
        if not may_change(by, session, target):
            raise NotPermitted(CHANGE_RULE)
        return session

    async def _announce(self, db: AsyncSession, payload: EventPayload) -> None:
        event = await self.outbox.add(db, payload)
        await self.own_consumer.record_own_event(db, event)
        # Applied as it travels (parsed back from its envelope), exactly as a rebuild will.
        applied = parse_payload(event, type(payload))
        book = await self.store.load(db, [applied])
        HANDLERS[type(payload)](book, applied)
        await self.store.write(db, book)
