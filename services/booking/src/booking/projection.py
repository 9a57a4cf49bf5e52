"""The sessions store as a projection of `booking.sessions` and of the ledger's verdicts.

Every change to a session, the API's own included, is applied here from its event, by one
code path. That is what makes a rebuild (an empty database consuming the topic from the
beginning) give the very same rows: the API writes its event and applies it in one
transaction, and the consumer applies everybody else's events, and replays, the same way.

Locks: a session that exists is changed under its row lock. Creating a session (or taking a
new id for the API) first takes the id allocator's transaction-scoped advisory lock, so the
sequence only ever moves forward and the API never hands out an id an event already used.
A transaction holding the allocator lock may then lock a row, never the other way round.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from booking.models import SESSION_IDS_SEQUENCE, SessionCredit, TrainingSession
from booking.rules import (
    DEFAULT_DURATION,
    SessionIdTaken,
    SessionNotFound,
    SessionStatus,
    check_duration,
    check_moment,
    check_text,
    client_and_trainer_mismatch,
    refuse_reschedule,
    refuse_status_change,
)
from contracts.envelope import Event
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

#: The status each lifecycle event moves a session to.
STATUS_AFTER: dict[type[SessionStatusEvent], SessionStatus] = {
    SessionStarted: SessionStatus.IN_PROGRESS,
    SessionCompleted: SessionStatus.COMPLETED,
    SessionCancelled: SessionStatus.CANCELLED,
    SessionNoShow: SessionStatus.NO_SHOW,
}

#: Any constant: it only has to be the same for every replica, and the database is booking's.
SESSION_IDS_LOCK = 0x626F6F6B696E67


class Projection:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    # --- reading --------------------------------------------------------------------------

    async def find(self, session_id: int, *, for_update: bool = False) -> TrainingSession | None:
        query = (
            select(TrainingSession)
            .where(TrainingSession.id == session_id)
            .execution_options(populate_existing=True)
        )
        if for_update:
            query = query.with_for_update(of=TrainingSession)
        return (await self.session.scalars(query)).one_or_none()

    async def get(self, session_id: int, *, for_update: bool = False) -> TrainingSession:
        session = await self.find(session_id, for_update=for_update)
        if session is None:
            raise SessionNotFound(session_id)
        return session

    async def search(
        self,
        *,
        user_id: int | None = None,
        trainer_id: int | None = None,
        status: SessionStatus | None = None,
        limit: int,
        offset: int = 0,
    ) -> Sequence[TrainingSession]:
        """Sessions matching every filter given, the earliest session date first."""
        query = select(TrainingSession)
        if user_id is not None:
            query = query.where(TrainingSession.user_id == user_id)
        if trainer_id is not None:
            query = query.where(TrainingSession.trainer_id == trainer_id)
        if status is not None:
            query = query.where(TrainingSession.status == status)
        query = (
            query.order_by(TrainingSession.session_date, TrainingSession.id)
            .limit(limit)
            .offset(offset)
        )
        return (await self.session.scalars(query)).all()

    # --- ids ------------------------------------------------------------------------------

    async def allocate_id(self) -> int:
        """A session id no event has used (the API's bookings)."""
        await self._lock_ids()
        allocated = await self.session.execute(select(func.nextval(SESSION_IDS_SEQUENCE)))
        return int(allocated.scalar_one())

    async def _lock_ids(self) -> None:
        await self.session.execute(select(func.pg_advisory_xact_lock(SESSION_IDS_LOCK)))

    async def _advance_ids_past(self, session_id: int) -> None:
        """Keep the API's sequence ahead of an id another service chose. Called under the
        allocator lock, so nothing takes an id between the read and the move."""
        position = (
            await self.session.execute(text("select last_value, is_called from session_ids"))
        ).one()
        next_free = position.last_value + 1 if position.is_called else position.last_value
        if session_id >= next_free:
            await self.session.execute(select(func.setval(SESSION_IDS_SEQUENCE, session_id)))

    async def _find_or_lock_ids(self, session_id: int) -> TrainingSession | None:
        """The session, locked; or None, with the allocator locked so that it can be added."""
        found = await self.find(session_id, for_update=True)
        if found is not None:
            return found
        await self._lock_ids()
        # Someone may have added it while this transaction waited for the lock.
        return await self.find(session_id, for_update=True)

    async def _add(self, session: TrainingSession) -> None:
        """Add a new session; the caller holds the allocator lock (`_find_or_lock_ids`)."""
        await self._advance_ids_past(session.id)
        self.session.add(session)
        await self.session.flush()

    # --- booking.sessions -----------------------------------------------------------------

    async def apply(self, event: Event[Any]) -> None:
        """Apply one event of `booking.sessions`. Raises `BookingRuleBroken` for one that the
        rules refuse; nothing is changed then."""
        payload: EventPayload = event.payload
        if isinstance(payload, SessionBooked):
            await self._booked(payload, _moment_of(event))
        elif isinstance(payload, SessionRescheduled):
            await self._rescheduled(payload, _moment_of(event))
        elif isinstance(payload, SessionStatusEvent):
            await self._status_changed(payload)
        else:
            raise TypeError(f"{payload.event_type} is not a booking.sessions event")

    async def _booked(self, booked: SessionBooked, moment: datetime) -> None:
        check_moment("sessionDate", booked.session_date)
        check_duration(booked.duration)
        check_text("location", booked.location)
        check_text("notes", booked.notes)
        session = await self._find_or_lock_ids(booked.session_id)
        if session is None:
            await self._add(
                TrainingSession(
                    id=booked.session_id,
                    user_id=booked.user_id,
                    trainer_id=booked.trainer_id,
                    session_date=booked.session_date,
                    duration=booked.duration,
                    status=SessionStatus.SCHEDULED,
                    location=booked.location,
                    notes=booked.notes,
                    booking_received=True,
                    created_at=moment,
                    updated_at=moment,
                )
            )
            return
        _refuse_other_client_or_trainer(session, booked.user_id, booked.trainer_id)
        if not session.booking_received:
            # Moved along by another service before its booking came: the booking brings
            # the real date and place; the status it reached stays.
            session.session_date = booked.session_date
            session.duration = booked.duration
            session.location = booked.location
            session.notes = booked.notes
            session.booking_received = True
            session.updated_at = moment
        elif _booking_of(session) != _booking_in(booked):
            raise SessionIdTaken(
                f"session {booked.session_id} is already booked for "
                f"{session.session_date.isoformat()} ({session.duration} min); a booking for "
                f"{booked.session_date.isoformat()} ({booked.duration} min) cannot reuse its id"
            )
        # Otherwise: the same booking announced again, which changes nothing.

    async def _status_changed(self, moved: SessionStatusEvent) -> None:
        check_moment("at", moved.at)
        check_text("reason", moved.reason)
        target = STATUS_AFTER[type(moved)]
        session = await self._find_or_lock_ids(moved.session_id)
        if session is None:
            # Another service moved a session booking has not heard of. The event names the
            # client and trainer, so the session is known from here on, in the status it
            # reached; its booking, when it comes, fills in the date and place.
            await self._add(
                TrainingSession(
                    id=moved.session_id,
                    user_id=moved.user_id,
                    trainer_id=moved.trainer_id,
                    session_date=moved.at,
                    duration=DEFAULT_DURATION,
                    status=target,
                    status_reason=moved.reason,
                    booking_received=False,
                    created_at=moved.at,
                    updated_at=moved.at,
                )
            )
            return
        _refuse_other_client_or_trainer(session, moved.user_id, moved.trainer_id)
        if session.current_status is target:
            return  # the status the session already has: announced again, nothing changes
        refuse_status_change(moved.session_id, session.current_status, target, reported=True)
        session.status = target
        session.status_reason = moved.reason
        session.updated_at = moved.at

    async def _rescheduled(self, rescheduled: SessionRescheduled, moment: datetime) -> None:
        check_moment("sessionDate", rescheduled.session_date)
        session = await self.find(rescheduled.session_id, for_update=True)
        if session is None:
            raise SessionNotFound(rescheduled.session_id)
        if session.session_date == rescheduled.session_date:
            return
        refuse_reschedule(rescheduled.session_id, session.current_status)
        session.session_date = rescheduled.session_date
        session.updated_at = moment


@dataclass
class CreditMarks:
    """The ledger's verdicts on sessions (`credits.ledger`), gathered over a batch and
    written with one statement. Each only ever sets a flag, so their order within the batch
    does not matter, and a flag set before stays set."""

    session: AsyncSession
    flags: dict[int, tuple[bool, bool]] = field(default_factory=dict)

    def credit_deducted(self, session_id: int) -> None:
        _, restored = self.flags.get(session_id, (False, False))
        self.flags[session_id] = (True, restored)

    def credit_restored(self, session_id: int) -> None:
        deducted, _ = self.flags.get(session_id, (False, False))
        self.flags[session_id] = (deducted, True)

    async def write(self) -> None:
        if not self.flags:
            return
        upsert = insert(SessionCredit)
        await self.session.execute(
            upsert.on_conflict_do_update(
                index_elements=[SessionCredit.session_id],
                set_={
                    "credit_deducted": SessionCredit.credit_deducted
                    | upsert.excluded.credit_deducted,
                    "credit_restored": SessionCredit.credit_restored
                    | upsert.excluded.credit_restored,
                },
            ),
            [
                {"session_id": session_id, "credit_deducted": deducted,
                 "credit_restored": restored}
                for session_id, (deducted, restored) in sorted(self.flags.items())
            ],
        )  # fmt: skip
        self.flags.clear()


def _refuse_other_client_or_trainer(
    session: TrainingSession, user_id: int, trainer_id: int
) -> None:
    mismatch = client_and_trainer_mismatch(
        session.id,
        booked=(session.user_id, session.trainer_id),
        named=(user_id, trainer_id),
    )
    if mismatch:
        raise SessionIdTaken(mismatch)


def _booking_of(session: TrainingSession) -> tuple[datetime, int, str | None, str | None]:
    return (session.session_date, session.duration, session.location, session.notes)


def _booking_in(booked: SessionBooked) -> tuple[datetime, int, str | None, str | None]:
    return (booked.session_date, booked.duration, booked.location, booked.notes)


def _moment_of(event: Event[Any]) -> datetime:
    """When the event says its change happened. Its `time` is optional in CloudEvents; an
    event without one is dated when it is applied (a rebuild then dates it anew)."""
    moment = event.envelope.time or datetime.now(UTC)
    check_moment("event time", moment)
    return moment
