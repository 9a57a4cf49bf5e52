"""The sessions store as a projection of `booking.sessions` and of the ledger's verdicts.

Every change to a session, the API's own included, is applied here from its event, by one
code path. That is what makes a rebuild (an empty database consuming the topic from the
beginning) give the very same rows: the API writes its event and applies it in one
transaction, and the consumer applies everybody else's events, and replays, the same way.

Events are applied a batch at a time (`SessionChanges`; the API's are batches of one): the
sessions a batch names are locked and loaded with one query, the events decide in memory,
one after another in their order, and the changes are written with one statement (and one
more that moves the id sequence past the ids of the API's block the batch created).

Ids: the API allocates in its own block of ids (`contracts.session_ids`, producer 0); other
producers book in theirs, which never move the API's sequence. An id of the API's block that
arrives in an event (a rebuild, or a producer that strayed) moves the sequence past it.

Locks: a session that exists is changed under its row lock. Creating a session (or taking a
new id for the API) first takes the id allocator's transaction-scoped advisory lock, so the
sequence only ever moves forward and the API never hands out an id an event already used.
A transaction holding the allocator lock may then lock a row, never the other way round:
a batch that may create a session takes the allocator lock before it locks any row, and
locks its rows in id order.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from psycopg.errors import SequenceGeneratorLimitExceeded
from sqlalchemy import (
    BigInteger,
    ColumnElement,
    bindparam,
    false,
    func,
    or_,
    select,
    text,
    tuple_,
)
from sqlalchemy.dialects.postgresql import ARRAY, BIGINT
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from booking.models import SESSION_IDS_SEQUENCE, SessionCredit, TrainingSession
from booking.rules import (
    DEFAULT_DURATION,
    SessionIdsExhausted,
    SessionIdTaken,
    SessionNotFound,
    SessionStatus,
    check_moment,
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
from contracts.session_ids import BOOKING_API, producer_of
from servicekit.auth import Caller
from servicekit.db import any_of, columns_of, insert_rows

#: The status each lifecycle event moves a session to.
STATUS_AFTER: dict[type[SessionStatusEvent], SessionStatus] = {
    SessionStarted: SessionStatus.IN_PROGRESS,
    SessionCompleted: SessionStatus.COMPLETED,
    SessionCancelled: SessionStatus.CANCELLED,
    SessionNoShow: SessionStatus.NO_SHOW,
}

#: Any constant: it only has to be the same for every replica, and the database is booking's.
SESSION_IDS_LOCK = 0x626F6F6B696E67

#: The table itself: batches read and write it with Core statements, without the ORM's
#: bookkeeping per row.
SESSIONS = TrainingSession.metadata.tables[TrainingSession.__tablename__]
#: What events change in a session that exists; its id, client, trainer and creation stay.
_CHANGEABLE = (
    "session_date", "duration", "status", "location", "notes", "status_reason",
    "booking_received", "updated_at",
)  # fmt: skip

_SESSION_COLUMNS = (
    "id", "user_id", "trainer_id", "created_at", *_CHANGEABLE,
)  # fmt: skip
#: A batch's sessions and credit marks, one statement each (see `insert_rows`).
_UPSERT_SESSIONS = insert_rows(
    SESSIONS,
    _SESSION_COLUMNS,
    then="on conflict (id) do update set "
    + ", ".join(f"{name} = excluded.{name}" for name in _CHANGEABLE),
)
_MARK_COLUMNS = ("session_id", "credit_deducted", "credit_restored")
_ADD_CREDIT_MARKS = insert_rows(
    SessionCredit,
    _MARK_COLUMNS,
    then="on conflict (session_id) do update set"
    " credit_deducted = session_credits.credit_deducted or excluded.credit_deducted,"
    " credit_restored = session_credits.credit_restored or excluded.credit_restored",
)

#: Takes the allocator lock when one of the ids is not a session yet: an event about it
#: may create it.
_LOCK_IDS_IF_ANY_IS_NEW = text(
    "select pg_advisory_xact_lock(:lock) where exists ("
    " select from unnest(:ids) as named(id)"
    " where not exists (select from sessions where sessions.id = named.id))"
).bindparams(
    bindparam("lock", SESSION_IDS_LOCK, type_=BigInteger), bindparam("ids", type_=ARRAY(BIGINT))
)

#: Keeps the API's sequence ahead of an id of its block it did not hand out itself (`nextval`
#: gives `last_value + 1` once called, `last_value` before).
_ADVANCE_IDS_PAST = text(
    "select setval('session_ids', :id) from session_ids"
    " where :id >= case when is_called then last_value + 1 else last_value end"
).bindparams(bindparam("id", type_=BigInteger))


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
        after: int | None = None,
        visible_to: Caller | None = None,
    ) -> Sequence[TrainingSession]:
        """Sessions matching every filter given, the earliest session date first, those
        after the session `after` when given (`SessionNotFound` when it is not one the
        caller may see); only those `visible_to` may see (its own as a client, those it
        trains as a trainer)."""
        query = select(TrainingSession)
        if visible_to is not None and not visible_to.sees_everything:
            query = query.where(_involving(visible_to))
        if after is not None:
            cursor = (
                await self.session.execute(
                    query.with_only_columns(TrainingSession.session_date, TrainingSession.id).where(
                        TrainingSession.id == after
                    )
                )
            ).one_or_none()
            if cursor is None:
                raise SessionNotFound(after)
            query = query.where(
                tuple_(TrainingSession.session_date, TrainingSession.id) > tuple_(*cursor)
            )
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
        await self.session.execute(select(func.pg_advisory_xact_lock(SESSION_IDS_LOCK)))
        try:
            allocated = await self.session.execute(select(func.nextval(SESSION_IDS_SEQUENCE)))
        except DBAPIError as error:
            # The sequence's maximum is the end of the API's block.
            if isinstance(error.orig, SequenceGeneratorLimitExceeded):
                raise SessionIdsExhausted() from error
            raise
        return int(allocated.scalar_one())

    # --- booking.sessions -----------------------------------------------------------------

    async def apply(self, event: Event[Any]) -> None:
        """Apply one event of `booking.sessions` (the API's own). Raises `BookingRuleBroken`
        for one that the rules refuse; nothing is changed then."""
        changes = await SessionChanges.load(self.session, [event])
        changes.apply(event)
        await changes.write()


@dataclass(slots=True)
class _Session:
    """A row of `sessions` as the events applied so far leave it."""

    id: int
    user_id: int
    trainer_id: int
    session_date: datetime
    duration: int
    status: str
    location: str | None
    notes: str | None
    status_reason: str | None
    booking_received: bool
    created_at: datetime
    updated_at: datetime
    new: bool = False
    changed: bool = False

    def row(self) -> dict[str, Any]:
        return {
            "id": self.id, "user_id": self.user_id, "trainer_id": self.trainer_id,
            "session_date": self.session_date, "duration": self.duration,
            "status": self.status, "location": self.location, "notes": self.notes,
            "status_reason": self.status_reason, "booking_received": self.booking_received,
            "created_at": self.created_at, "updated_at": self.updated_at,
        }  # fmt: skip


@dataclass
class SessionChanges:
    """The sessions a batch of `booking.sessions` events names, locked and loaded before
    the first event is applied; the events change them in memory, in their order, and
    `write` stores every change with one statement. Apply only events it was loaded for."""

    session: AsyncSession
    _sessions: dict[int, _Session] = field(default_factory=dict)

    @classmethod
    async def load(cls, session: AsyncSession, batch: Iterable[Event[Any]]) -> SessionChanges:
        changes = cls(session)
        named: set[int] = set()
        may_create: set[int] = set()
        for event in batch:
            payload = event.payload
            if isinstance(payload, SessionRescheduled):
                named.add(payload.session_id)
            elif isinstance(payload, SessionBooked | SessionStatusEvent):
                named.add(payload.session_id)
                may_create.add(payload.session_id)
        if may_create:
            await session.execute(_LOCK_IDS_IF_ANY_IS_NEW, {"ids": sorted(may_create)})
        if named:
            # Read after the allocator lock: a session added while this transaction waited
            # for it is found, not added twice.
            rows = await session.execute(
                select(*SESSIONS.c)
                .where(SESSIONS.c.id == any_of(sorted(named), BIGINT))
                .order_by(SESSIONS.c.id)
                .with_for_update()
            )
            for row in rows:
                changes._sessions[row.id] = _Session(**row._mapping)
        return changes

    async def write(self) -> None:
        rows = [s.row() for s in self._sessions.values() if s.new or s.changed]
        if not rows:
            return
        await self.session.execute(_UPSERT_SESSIONS, columns_of(rows, _SESSION_COLUMNS))
        # Only ids of the API's own block move its sequence (its own bookings coming back
        # in a rebuild, or a producer straying into the block): another block's never do.
        api_ids = [
            s.id for s in self._sessions.values() if s.new and producer_of(s.id) == BOOKING_API
        ]
        if api_ids:
            # Under the allocator lock, taken when loading found these ids missing.
            await self.session.execute(_ADVANCE_IDS_PAST, {"id": max(api_ids)})

    def apply(self, event: Event[Any]) -> None:
        """Apply one event of `booking.sessions`. Raises `BookingRuleBroken` for one that
        the rules refuse; the transaction is then rolled back, with every change."""
        payload: EventPayload = event.payload
        if isinstance(payload, SessionBooked):
            self._booked(payload, _moment_of(event))
        elif isinstance(payload, SessionRescheduled):
            self._rescheduled(payload, _moment_of(event))
        elif isinstance(payload, SessionStatusEvent):
            self._status_changed(payload)
        else:
            raise TypeError(f"{payload.event_type} is not a booking.sessions event")

    def _booked(self, booked: SessionBooked, moment: datetime) -> None:
        check_moment("sessionDate", booked.session_date)
        session = self._sessions.get(booked.session_id)
        if session is None:
            self._add(
                _Session(
                    id=booked.session_id,
                    user_id=booked.user_id,
                    trainer_id=booked.trainer_id,
                    session_date=booked.session_date,
                    duration=booked.duration,
                    status=SessionStatus.SCHEDULED,
                    location=booked.location,
                    notes=booked.notes,
                    status_reason=None,
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
            session.changed = True
        elif _booking_of(session) != _booking_in(booked):
            # Dated in UTC, as the store gives it back, wherever the booking came from.
            raise SessionIdTaken(
                f"session {booked.session_id} is already booked for "
                f"{session.session_date.astimezone(UTC).isoformat()} ({session.duration} min);"
                f" a booking for {booked.session_date.isoformat()} ({booked.duration} min)"
                " cannot reuse its id"
            )
        # Otherwise: the same booking announced again, which changes nothing.

    def _status_changed(self, moved: SessionStatusEvent) -> None:
        check_moment("at", moved.at)
        target = STATUS_AFTER[type(moved)]
        session = self._sessions.get(moved.session_id)
        if session is None:
            # Another service moved a session booking has not heard of. The event names the
            # client and trainer, so the session is known from here on, in the status it
            # reached; its booking, when it comes, fills in the date and place.
            self._add(
                _Session(
                    id=moved.session_id,
                    user_id=moved.user_id,
                    trainer_id=moved.trainer_id,
                    session_date=moved.at,
                    duration=DEFAULT_DURATION,
                    status=target,
                    location=None,
                    notes=None,
                    status_reason=moved.reason,
                    booking_received=False,
                    created_at=moved.at,
                    updated_at=moved.at,
                )
            )
            return
        _refuse_other_client_or_trainer(session, moved.user_id, moved.trainer_id)
        current = SessionStatus(session.status)
        if current is target:
            return  # the status the session already has: announced again, nothing changes
        refuse_status_change(moved.session_id, current, target, reported=True)
        session.status = target
        session.status_reason = moved.reason
        session.updated_at = moved.at
        session.changed = True

    def _rescheduled(self, rescheduled: SessionRescheduled, moment: datetime) -> None:
        check_moment("sessionDate", rescheduled.session_date)
        session = self._sessions.get(rescheduled.session_id)
        if session is None:
            raise SessionNotFound(rescheduled.session_id)
        if session.session_date == rescheduled.session_date:
            return
        refuse_reschedule(rescheduled.session_id, SessionStatus(session.status))
        session.session_date = rescheduled.session_date
        session.updated_at = moment
        session.changed = True

    def _add(self, session: _Session) -> None:
        session.new = True
        self._sessions[session.id] = session


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
        marks = [
            {"session_id": session_id, "credit_deducted": deducted, "credit_restored": restored}
            for session_id, (deducted, restored) in sorted(self.flags.items())
        ]
        await self.session.execute(_ADD_CREDIT_MARKS, columns_of(marks, _MARK_COLUMNS))
        self.flags.clear()


def _involving(caller: Caller) -> ColumnElement[bool]:
    """The sessions of `caller` as a client, and those it trains as a trainer."""
    parties: list[ColumnElement[bool]] = [false()]
    if caller.client_id is not None:
        parties.append(TrainingSession.user_id == caller.client_id)
    if caller.trainer_id is not None:
        parties.append(TrainingSession.trainer_id == caller.trainer_id)
    return or_(*parties)


def _refuse_other_client_or_trainer(session: _Session, user_id: int, trainer_id: int) -> None:
    mismatch = client_and_trainer_mismatch(
        session.id,
        booked=(session.user_id, session.trainer_id),
        named=(user_id, trainer_id),
    )
    if mismatch:
        raise SessionIdTaken(mismatch)


def _booking_of(session: _Session) -> tuple[datetime, int, str | None, str | None]:
    return (session.session_date, session.duration, session.location, session.notes)


def _booking_in(booked: SessionBooked) -> tuple[datetime, int, str | None, str | None]:
    return (booked.session_date, booked.duration, booked.location, booked.notes)


def _moment_of(event: Event[Any]) -> datetime:
    """When the event says its change happened. Its `time` is optional in CloudEvents; an
    event without one is dated when it is applied (a rebuild then dates it anew)."""
    moment = event.envelope.time or datetime.now(UTC)
    check_moment("event time", moment)
    return moment
