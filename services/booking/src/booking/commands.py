"""What clients and trainers ask of booking through its API, in the business's words.

Each use case runs in the caller's transaction: it checks the request against the session
as it stands, announces the change in the outbox, marks that event as already applied by
booking's own consumer (it comes back on `booking.sessions`), and applies it the way the
consumer does (`SessionStore`, `HANDLERS`: a batch of one), so a rebuild gives the same rows.

A booking is checked against what booking knows of the client's credits, and carries the
studio's cancellation policy of the moment, by which credits judges the session later. So is
a place taken in a group session: to the ledger, a place is a booking.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from booking.access import (
    BOOKING_RULE,
    CHANGE_GROUP_RULE,
    CHANGE_RULE,
    PLACE_RULE,
    SCHEDULE_RULE,
    WITHOUT_CREDIT_RULE,
    may_book,
    may_book_without_credit,
    may_change,
    may_run_group,
    may_schedule_group,
    may_see,
    may_see_group,
    may_take_place,
)
from booking.handlers import HANDLERS
from booking.models import GroupSession, TrainingSession
from booking.queries import credit_standing, group_session_by_id, session_by_id
from booking.rules import (
    GroupSessionNotFound,
    GroupSessionStatus,
    NotPermitted,
    SessionNotFound,
    attendance,
    refuse_group_reschedule,
    refuse_group_status_change,
    refuse_join,
    refuse_leave,
    refuse_reschedule,
    refuse_status_change,
)
from booking.store import SessionStore, allocate_id
from contracts.envelope import parse_payload
from contracts.events import (
    CancellationPolicy,
    EventPayload,
    GroupSessionCancelled,
    GroupSessionCompleted,
    GroupSessionScheduled,
    ParticipantJoined,
    ParticipantLeft,
    SessionBooked,
    SessionRescheduled,
)
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
class PlaceTaken:
    """A client's place in a group session: `new`, or held already (nothing changed);
    `without_credit` and `available` as for `Booked`."""

    session: GroupSession
    new: bool
    without_credit: bool = False
    available: int = 0


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

    async def schedule_group(
        self,
        db: AsyncSession,
        *,
        by: Caller,
        trainer_id: int,
        session_date: datetime,
        capacity: int,
        duration: int,
        location: str | None,
        notes: str | None,
    ) -> GroupSession:
        """Schedule a group session with room for `capacity` clients and nobody in it yet."""
        if not may_schedule_group(by, trainer_id=trainer_id):
            raise NotPermitted(SCHEDULE_RULE)
        session_id = await allocate_id(db)
        await self._announce(
            db,
            GroupSessionScheduled(
                session_id=session_id,
                trainer_id=trainer_id,
                session_date=session_date,
                capacity=capacity,
                duration=duration,
                location=location,
                notes=notes,
                policy=self.policy,
            ),
        )
        return await group_session_by_id(db, session_id)

    async def join(
        self,
        db: AsyncSession,
        session_id: int,
        user_id: int,
        *,
        by: Caller,
        allow_without_credit: bool = False,
    ) -> PlaceTaken:
        """Take a place in a group session for a client. One they hold already changes
        nothing and announces nothing, so a client may safely retry; otherwise the place is
        judged as a booking: a client with nothing available is refused, unless staff or a
        service allow it."""
        group = await self._group_to_change(db, session_id, by=by)
        if not may_take_place(by, group, user_id):
            raise NotPermitted(PLACE_RULE)
        if allow_without_credit and not may_book_without_credit(by):
            raise NotPermitted(WITHOUT_CREDIT_RULE)
        if not refuse_join(group, user_id):
            return PlaceTaken(group, new=False)
        standing = await credit_standing(db, user_id)
        without_credit = standing.refuse_booking(
            group.session_date, overridden=allow_without_credit
        )
        await self._announce(
            db,
            ParticipantJoined(
                session_id=session_id,
                user_id=user_id,
                trainer_id=group.trainer_id,
                session_date=group.session_date,
                at=datetime.now(UTC),
                policy=self.policy,
            ),
        )
        return PlaceTaken(
            await group_session_by_id(db, session_id),
            new=True,
            without_credit=without_credit,
            available=standing.available,
        )

    async def leave(
        self,
        db: AsyncSession,
        session_id: int,
        user_id: int,
        *,
        by: Caller,
        reason: str | None = None,
    ) -> GroupSession:
        """Give up a client's place before the session; given up already, nothing changes."""
        group = await self._group_to_change(db, session_id, by=by)
        if not may_take_place(by, group, user_id):
            raise NotPermitted(PLACE_RULE)
        if not refuse_leave(group, user_id):
            return group
        await self._announce(
            db,
            ParticipantLeft(
                session_id=session_id,
                user_id=user_id,
                trainer_id=group.trainer_id,
                at=datetime.now(UTC),
                reason=reason,
            ),
        )
        return await group_session_by_id(db, session_id)

    async def change_group_status(
        self,
        db: AsyncSession,
        session_id: int,
        target: GroupSessionStatus,
        *,
        by: Caller,
        reason: str | None = None,
        no_shows: frozenset[int] = frozenset(),
    ) -> GroupSession:
        """Complete a group session (every participant attended but `no_shows`) or cancel it.
        Asking for the status it already has changes nothing and announces nothing."""
        group = await self._group_to_run(db, session_id, by=by)
        if not refuse_group_status_change(group, target):
            return group
        at = datetime.now(UTC)
        ended: GroupSessionCompleted | GroupSessionCancelled
        if target is GroupSessionStatus.COMPLETED:
            ended = GroupSessionCompleted(
                session_id=session_id,
                trainer_id=group.trainer_id,
                at=at,
                attended=attendance(group, no_shows),
                no_shows=sorted(no_shows),
            )
        else:
            ended = GroupSessionCancelled(
                session_id=session_id, trainer_id=group.trainer_id, at=at, reason=reason
            )
        await self._announce(db, ended)
        return await group_session_by_id(db, session_id)

    async def reschedule_group(
        self, db: AsyncSession, session_id: int, session_date: datetime, *, by: Caller
    ) -> GroupSession:
        """Give a group session that is not over a new date; the same date changes nothing."""
        group = await self._group_to_run(db, session_id, by=by)
        if group.session_date == session_date:
            return group
        refuse_group_reschedule(group)
        await self._announce(
            db, SessionRescheduled(session_id=session_id, session_date=session_date)
        )
        return await group_session_by_id(db, session_id)

    async def _group_to_change(
        self, db: AsyncSession, session_id: int, *, by: Caller
    ) -> GroupSession:
        """The group session, locked (its places with it), once `by` may see it: one the
        caller may not see reads as never scheduled."""
        group = await group_session_by_id(db, session_id, for_update=True)
        if not may_see_group(by, group):
            raise GroupSessionNotFound(session_id)
        return group

    async def _group_to_run(self, db: AsyncSession, session_id: int, *, by: Caller) -> GroupSession:
        """The group session, locked, once `by` may complete, cancel or move it."""
        group = await self._group_to_change(db, session_id, by=by)
        if not may_run_group(by, group):
            raise NotPermitted(CHANGE_GROUP_RULE)
        return group

    async def _announce(self, db: AsyncSession, payload: EventPayload) -> None:
        event = await self.outbox.add(db, payload)
        await self.own_consumer.record_own_event(db, event)
        # Applied as it travels (parsed back from its envelope), exactly as a rebuild will.
        applied = parse_payload(event, type(payload))
        book = await self.store.load(db, [applied])
        HANDLERS[type(payload)](book, applied)
        await self.store.write(db, book)
