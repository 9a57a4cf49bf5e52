"""Where booking's rules meet the database: the sessions a batch of events names, locked
and loaded with one query before its first event decides, and what the events changed
written after its last with one statement per table (`insert_rows`). The API's events are
batches of one, applied the same way (`booking.commands`).

Ids: the API allocates in its own block of ids (`contracts.session_ids`, producer 0); other
producers book in theirs, which never move the API's sequence. An id of the API's block that
arrives in an event (a rebuild, or a producer that strayed) moves the sequence past it.

Group sessions share those ids: a batch loads both kinds for every id it names, so an event
of one kind naming the other's id is refused, and a group session created from an event of
the API's block moves the sequence like a one-to-one session.

Locks: a session that exists is changed under its row lock (a group session's places under
their session's). Creating a session of either kind (or taking a new id for the API) first
takes the id allocator's transaction-scoped advisory lock, so the sequence only ever moves
forward and the API never hands out an id an event already used. A transaction holding the
allocator lock may then lock a row, never the other way round: a batch that may create a
session takes the allocator lock before it locks any row, and locks its sessions' rows in
id order, then its group sessions' rows in id order.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from psycopg.errors import SequenceGeneratorLimitExceeded
from sqlalchemy import BigInteger, Table, TextClause, bindparam, func, select, text
from sqlalchemy.dialects.postgresql import ARRAY, BIGINT
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from booking.models import (
    SESSION_IDS_SEQUENCE,
    ClientBalance,
    GroupParticipant,
    GroupSession,
    SessionCredit,
    TrainingSession,
    UnlimitedPackageGrant,
)
from booking.rules import (
    GroupSessionStatus,
    KnownGroupSession,
    KnownPlace,
    KnownSession,
    PlaceStatus,
    SessionBook,
    SessionIdsExhausted,
)
from contracts.envelope import Event
from contracts.events import (
    GroupSessionCancelled,
    GroupSessionCompleted,
    GroupSessionScheduled,
    ParticipantJoined,
    ParticipantLeft,
    SessionBooked,
    SessionRescheduled,
    SessionStatusEvent,
)
from contracts.session_ids import BOOKING_API, producer_of
from contracts.sessions import SessionStatus
from servicekit.db import any_of, columns_of, insert_rows

#: Any constant: it only has to be the same for every replica, and the database is booking's.
SESSION_IDS_LOCK = 0x626F6F6B696E67

#: The tables themselves: batches read and write them with Core statements, without the
#: ORM's bookkeeping per row.
SESSIONS = TrainingSession.metadata.tables[TrainingSession.__tablename__]
GROUP_SESSIONS = GroupSession.metadata.tables[GroupSession.__tablename__]
PLACES = GroupParticipant.metadata.tables[GroupParticipant.__tablename__]


def _upsert(
    table: Table, key: str, columns: Sequence[str], changeable: Sequence[str]
) -> TextClause:
    """Rows of `table` inserted, or, where `key` is taken, their `changeable` columns set."""
    return insert_rows(
        table,
        columns,
        then=f"on conflict ({key}) do update set "
        + ", ".join(f"{name} = excluded.{name}" for name in changeable),
    )


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
#: A batch's sessions, group sessions, places and credit marks, one statement each (see
#: `insert_rows`).
_UPSERT_SESSIONS = _upsert(SESSIONS, "id", _SESSION_COLUMNS, _CHANGEABLE)
#: What events change in a group session that exists; its id, trainer and creation stay.
_GROUP_CHANGEABLE = (
    "session_date",
    "duration",
    "capacity",
    "status",
    "location",
    "notes",
    "status_reason",
    "schedule_received",
    "updated_at",
)
_GROUP_COLUMNS = ("id", "trainer_id", "created_at", *_GROUP_CHANGEABLE)
_UPSERT_GROUPS = _upsert(GROUP_SESSIONS, "id", _GROUP_COLUMNS, _GROUP_CHANGEABLE)
_PLACE_CHANGEABLE = ("status", "joined_at", "left_at")
_PLACE_COLUMNS = ("session_id", "user_id", *_PLACE_CHANGEABLE)
_UPSERT_PLACES = _upsert(PLACES, "session_id, user_id", _PLACE_COLUMNS, _PLACE_CHANGEABLE)
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

#: Takes the allocator lock when one of the ids is no session of either kind yet: an event
#: about it may create it.
_LOCK_IDS_IF_ANY_IS_NEW = text(
    "select pg_advisory_xact_lock(:lock) where exists ("
    " select from unnest(:ids) as named(id)"
    " where not exists (select from sessions where sessions.id = named.id)"
    " and not exists (select from group_sessions where group_sessions.id = named.id))"
).bindparams(
    bindparam("lock", SESSION_IDS_LOCK, type_=BigInteger), bindparam("ids", type_=ARRAY(BIGINT))
)

#: Keeps the API's sequence ahead of an id of its block it did not hand out itself (`nextval`
#: gives `last_value + 1` once called, `last_value` before).
_ADVANCE_IDS_PAST = text(
    "select setval('session_ids', :id) from session_ids"
    " where :id >= case when is_called then last_value + 1 else last_value end"
).bindparams(bindparam("id", type_=BigInteger))


#: The events that name a session, of either kind, and those of them that may create one
#: (a join, a leave or a reschedule needs a session that exists).
_NAMING_A_SESSION = (
    SessionBooked,
    SessionStatusEvent,
    SessionRescheduled,
    GroupSessionScheduled,
    ParticipantJoined,
    ParticipantLeft,
    GroupSessionCompleted,
    GroupSessionCancelled,
)
_MAY_CREATE = (
    SessionBooked,
    SessionStatusEvent,
    GroupSessionScheduled,
    GroupSessionCompleted,
    GroupSessionCancelled,
)


class SessionStore:
    """The booking consumer's `BatchStore` (and the API's, for its batches of one): a
    `SessionBook` per batch."""

    async def load(self, db: AsyncSession, events: Sequence[Event[Any]]) -> SessionBook:
        """Lock and load the sessions and group sessions (with their places) the events
        name; take the id allocator's lock first when one of them may create a session."""
        book = SessionBook()
        named = sorted(
            {e.payload.session_id for e in events if isinstance(e.payload, _NAMING_A_SESSION)}
        )
        may_create = sorted(
            {e.payload.session_id for e in events if isinstance(e.payload, _MAY_CREATE)}
        )
        if may_create:
            await db.execute(_LOCK_IDS_IF_ANY_IS_NEW, {"ids": may_create})
        if named:
            # Read after the allocator lock: a session added while this transaction waited
            # for it is found, not added twice.
            rows = await db.execute(
                select(*SESSIONS.c)
                .where(SESSIONS.c.id == any_of(named, BIGINT))
                .order_by(SESSIONS.c.id)
                .with_for_update()
            )
            for row in rows:
                book.sessions[row.id] = _known(row._mapping)
            book.group_sessions = await _load_group_sessions(db, named)
        return book

    async def write(self, db: AsyncSession, book: SessionBook) -> None:
        """Upsert the sessions and group sessions created or changed and the places taken
        or changed, move the API's sequence past the ids of its block the batch created, and
        add the ledger's verdicts, balances and unlimited packages."""
        sessions = book.to_write()
        if sessions:
            rows = [_values(session, _SESSION_COLUMNS) for session in sessions]
            await db.execute(_UPSERT_SESSIONS, columns_of(rows, _SESSION_COLUMNS))
        groups = book.groups_to_write()
        if groups:
            rows = [_values(group, _GROUP_COLUMNS) for group in groups]
            await db.execute(_UPSERT_GROUPS, columns_of(rows, _GROUP_COLUMNS))
        places = book.places_to_write()
        if places:
            rows = [
                {"session_id": session_id, **_values(place, _PLACE_COLUMNS[1:])}
                for session_id, place in places
            ]
            await db.execute(_UPSERT_PLACES, columns_of(rows, _PLACE_COLUMNS))
        # Only ids of the API's own block move its sequence (its own bookings coming back
        # in a rebuild, or a producer straying into the block): another block's never do.
        created = [s.id for s in sessions if s.new] + [g.id for g in groups if g.new]
        api_ids = [i for i in created if producer_of(i) == BOOKING_API]
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
    """A session id no event has used (the API's bookings and group sessions), under the
    allocator lock."""
    await db.execute(select(func.pg_advisory_xact_lock(SESSION_IDS_LOCK)))
    try:
        allocated = await db.execute(select(func.nextval(SESSION_IDS_SEQUENCE)))
    except DBAPIError as error:
        # The sequence's maximum is the end of the API's block.
        if isinstance(error.orig, SequenceGeneratorLimitExceeded):
            raise SessionIdsExhausted() from error
        raise
    return int(allocated.scalar_one())


async def _load_group_sessions(
    db: AsyncSession, ids: Sequence[int]
) -> dict[int, KnownGroupSession]:
    """The group sessions among `ids` (in id order), locked, with every place of each."""
    rows = await db.execute(
        select(*GROUP_SESSIONS.c)
        .where(GROUP_SESSIONS.c.id == any_of(ids, BIGINT))
        .order_by(GROUP_SESSIONS.c.id)
        .with_for_update()
    )
    groups = {
        row.id: KnownGroupSession(
            **{**row._mapping, "status": GroupSessionStatus(row.status)}, places={}
        )
        for row in rows
    }
    if groups:
        # Under their sessions' row locks: nobody changes these places meanwhile.
        places = await db.execute(
            select(*PLACES.c)
            .where(PLACES.c.session_id == any_of(list(groups), BIGINT))
            .order_by(PLACES.c.session_id, PLACES.c.user_id)
        )
        for place in places:
            groups[place.session_id].places[place.user_id] = KnownPlace(
                place.user_id, PlaceStatus(place.status), place.joined_at, place.left_at
            )
    return groups


def _known(row: Any) -> KnownSession:
    return KnownSession(**{**row, "status": SessionStatus(row["status"])})


def _values(item: object, columns: Sequence[str]) -> dict[str, Any]:
    return {name: getattr(item, name) for name in columns}
