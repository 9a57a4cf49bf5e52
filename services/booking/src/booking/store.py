"""Where booking's rules meet the database: the sessions a batch of events names, locked
and loaded with one query before its first event decides, and what the events changed
written after its last with one statement per table (`insert_rows`). The API's events are
batches of one, applied the same way (`booking.commands`).

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

from collections.abc import Sequence
from typing import Any

from psycopg.errors import SequenceGeneratorLimitExceeded
from sqlalchemy import BigInteger, bindparam, func, select, text
from sqlalchemy.dialects.postgresql import ARRAY, BIGINT
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from booking.models import (
    SESSION_IDS_SEQUENCE,
    ClientBalance,
    SessionCredit,
    TrainingSession,
    UnlimitedPackageGrant,
)
from booking.rules import KnownSession, SessionBook, SessionIdsExhausted
from contracts.envelope import Event
from contracts.events import SessionBooked, SessionRescheduled, SessionStatusEvent
from contracts.session_ids import BOOKING_API, producer_of
from contracts.sessions import SessionStatus
from servicekit.db import any_of, columns_of, insert_rows

#: Any constant: it only has to be the same for every replica, and the database is booking's.
SESSION_IDS_LOCK = 0x626F6F6B696E67

#: The table itself: batches read and write it with Core statements, without the ORM's
#: bookkeeping per row.
SESSIONS = TrainingSession.metadata.tables[TrainingSession.__tablename__]
#: What events change in a session that exists; its id, client, trainer and creation stay.
_CHANGEABLE = (
    "session_date",
    "duration",
    "status",
    "location",
    "notes",
    "status_reason",
    "booking_received",
    "updated_at",
)
_SESSION_COLUMNS = ("id", "user_id", "trainer_id", "created_at", *_CHANGEABLE)
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
#: The latest balance of each client wins: a later batch holds a later event of theirs.
_BALANCE_COLUMNS = ("user_id", "available")
_SET_BALANCES = insert_rows(
    ClientBalance,
    _BALANCE_COLUMNS,
    then="on conflict (user_id) do update set available = excluded.available",
)
_PACKAGE_COLUMNS = ("package_id", "user_id", "valid_until")
_ADD_PACKAGES = insert_rows(
    UnlimitedPackageGrant, _PACKAGE_COLUMNS, then="on conflict (package_id) do nothing"
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


class SessionStore:
    """The booking consumer's `BatchStore` (and the API's, for its batches of one): a
    `SessionBook` per batch."""

    async def load(self, db: AsyncSession, events: Sequence[Event[Any]]) -> SessionBook:
        """Lock and load the sessions the events name; take the id allocator's lock first
        when one of them may create a session."""
        book = SessionBook()
        named: set[int] = set()
        may_create: set[int] = set()
        for event in events:
            payload = event.payload
            if isinstance(payload, SessionRescheduled):
                named.add(payload.session_id)
            elif isinstance(payload, SessionBooked | SessionStatusEvent):
                named.add(payload.session_id)
                may_create.add(payload.session_id)
        if may_create:
            await db.execute(_LOCK_IDS_IF_ANY_IS_NEW, {"ids": sorted(may_create)})
        if named:
            # Read after the allocator lock: a session added while this transaction waited
            # for it is found, not added twice.
            rows = await db.execute(
                select(*SESSIONS.c)
                .where(SESSIONS.c.id == any_of(sorted(named), BIGINT))
                .order_by(SESSIONS.c.id)
                .with_for_update()
            )
            for row in rows:
                book.sessions[row.id] = _known(row._mapping)
        return book

    async def write(self, db: AsyncSession, book: SessionBook) -> None:
        """Upsert the sessions created or changed, move the API's sequence past the ids of
        its block the batch created, and add the ledger's verdicts, balances and unlimited
        packages."""
        sessions = book.to_write()
        if sessions:
            rows = [_row(session) for session in sessions]
            await db.execute(_UPSERT_SESSIONS, columns_of(rows, _SESSION_COLUMNS))
            # Only ids of the API's own block move its sequence (its own bookings coming
            # back in a rebuild, or a producer straying into the block): another block's
            # never do.
            api_ids = [s.id for s in sessions if s.new and producer_of(s.id) == BOOKING_API]
            if api_ids:
                # Under the allocator lock, taken when loading found these ids missing.
                await db.execute(_ADVANCE_IDS_PAST, {"id": max(api_ids)})
        if book.credit_marks:
            marks = [
                {
                    "session_id": session_id,
                    "credit_deducted": mark.deducted,
                    "credit_restored": mark.restored,
                }
                for session_id, mark in sorted(book.credit_marks.items())
            ]
            await db.execute(_ADD_CREDIT_MARKS, columns_of(marks, _MARK_COLUMNS))
        if book.available:
            balances = [
                {"user_id": user_id, "available": available}
                for user_id, available in sorted(book.available.items())
            ]
            await db.execute(_SET_BALANCES, columns_of(balances, _BALANCE_COLUMNS))
        if book.unlimited:
            packages = [
                {"package_id": package_id, "user_id": p.user_id, "valid_until": p.valid_until}
                for package_id, p in sorted(book.unlimited.items())
            ]
            await db.execute(_ADD_PACKAGES, columns_of(packages, _PACKAGE_COLUMNS))


async def allocate_id(db: AsyncSession) -> int:
    """A session id no event has used (the API's bookings), under the allocator lock."""
    await db.execute(select(func.pg_advisory_xact_lock(SESSION_IDS_LOCK)))
    try:
        allocated = await db.execute(select(func.nextval(SESSION_IDS_SEQUENCE)))
    except DBAPIError as error:
        # The sequence's maximum is the end of the API's block.
        if isinstance(error.orig, SequenceGeneratorLimitExceeded):
            raise SessionIdsExhausted() from error
        raise
    return int(allocated.scalar_one())


def _known(row: Any) -> KnownSession:
    return KnownSession(**{**row, "status": SessionStatus(row["status"])})


def _row(session: KnownSession) -> dict[str, Any]:
    return {name: getattr(session, name) for name in _SESSION_COLUMNS}
