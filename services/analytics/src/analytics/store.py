"""Where usage's rules meet the database: the clients, workouts and booked sessions a batch
names, locked and loaded before deciding, and what was decided written after, with one statement per
table whatever the number of rows (`insert_rows`): a batch costs about what one event does.

Every change to one client's usage (from either topic, in any replica) waits for the one
before it: loading locks the clients' usage rows until commit, in one order (by user id).
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.dialects.postgresql import BIGINT, UUID
from sqlalchemy.ext.asyncio import AsyncSession

from analytics.models import (
    LedgerEntry,
    SessionPlace,
    TrainerClient,
    TrainerSession,
    UserUsage,
    Workout,
    WorkoutDay,
)
from analytics.rules import (
    STORED_USAGE,
    ClientUsage,
    KnownWorkout,
    Place,
    SessionKind,
    SessionStatus,
    UsageBook,
)
from analytics.rules import TrainerSession as RuleSession
from contracts.envelope import Event
from contracts.events import SessionType, WorkoutLogged, WorkoutStatus, WorkoutStatusChanged
from contracts.topics import BOOKING_SESSIONS
from servicekit.db import any_of, columns_of, insert_rows
from servicekit.outbox import Outbox

_WORKOUT_COLUMNS = (
    "workout_id",
    "user_id",
    "session_type",
    "status",
    "changed_by",
    "workout_date",
    "trainer_id",
)
#: One statement per batch whatever its size (see `insert_rows`).
_ENSURE_USAGES = insert_rows(UserUsage, ["user_id"], then="on conflict do nothing")
#: The PostgreSQL notification channel told of each client whose usage a transaction
#: changes (the payload is the user id), at commit: it wakes the usage streams of every
#: replica (`analytics.stream`).
USAGE_CHANGED = "session_usage_changed"
#: The rows exist (`_ENSURE_USAGES` made them when loading): this only updates them.
_SET_USAGES = insert_rows(
    UserUsage,
    ("user_id", *STORED_USAGE),
    then="on conflict (user_id) do update set "
    + ", ".join(f"{name} = excluded.{name}" for name in STORED_USAGE),
)
#: The same, and the notification of each client, in one round trip.
_UPDATE_USAGES = text(
    f"with updated as ({_SET_USAGES.text} returning user_id)"  # noqa: S608 (constants only)
    f" select pg_notify('{USAGE_CHANGED}', user_id::text) from updated"
)
_TRAINER_CLIENT_COLUMNS = ("trainer_id", "user_id")
_ADD_TRAINER_CLIENTS = insert_rows(
    TrainerClient, _TRAINER_CLIENT_COLUMNS, then="on conflict do nothing"
)
_UPSERT_WORKOUTS = insert_rows(
    Workout,
    _WORKOUT_COLUMNS,
    then="on conflict (workout_id) do update set session_type = excluded.session_type,"
    " status = excluded.status, changed_by = excluded.changed_by,"
    " workout_date = excluded.workout_date, trainer_id = excluded.trainer_id",
)
_DAY_COLUMNS = ("day", "session_type", "completed")
#: Adds the batch's changes to each day's counts (`completed` is the change here).
_ADD_TO_DAYS = insert_rows(
    WorkoutDay,
    _DAY_COLUMNS,
    then="on conflict (day, session_type) do update"
    " set completed = workout_days.completed + excluded.completed",
)
_SESSION_COLUMNS = ("session_id", "kind", "trainer_id", "session_date", "status")
_UPSERT_SESSIONS = insert_rows(
    TrainerSession,
    _SESSION_COLUMNS,
    then="on conflict (session_id) do update set kind = excluded.kind,"
    " trainer_id = excluded.trainer_id, session_date = excluded.session_date,"
    " status = excluded.status",
)
_PLACE_COLUMNS = ("session_id", "user_id", "outcome")
_UPSERT_PLACES = insert_rows(
    SessionPlace,
    _PLACE_COLUMNS,
    then="on conflict (session_id, user_id) do update set outcome = excluded.outcome",
)
_ENTRY_COLUMNS = (
    "event_id",
    "user_id",
    "entry_type",
    "change",
    "remaining",
    "occurred_at",
    "session_id",
    "detail",
)
#: A ledger event recorded once, whatever redelivers it.
_ADD_ENTRIES = insert_rows(LedgerEntry, _ENTRY_COLUMNS, then="on conflict do nothing")
#: The session events' payload types (they name sessions, not usage).
_SESSION_EVENT_TYPES = frozenset(BOOKING_SESSIONS.event_types)


def _new_id() -> str:
    return str(uuid.uuid4())


@dataclass(frozen=True, slots=True)
class UsageStore:
    """The analytics consumer's `BatchStore`: a `UsageBook` per batch."""

    outbox: Outbox

    async def load(self, db: AsyncSession, events: Sequence[Event[Any]]) -> UsageBook:
        """Lock and load the usage of every client the events name, and the workouts."""
        book = UsageBook()
        usage_events = [event for event in events if event.type not in _SESSION_EVENT_TYPES]
        clients = sorted({event.payload.user_id for event in usage_events})
        workout_ids = sorted(
            {
                event.payload.workout_id
                for event in events
                if isinstance(event.payload, WorkoutLogged | WorkoutStatusChanged)
            }
        )
        if clients:
            await self._load_usages(db, book, clients)
        if workout_ids:
            await self._load_workouts(db, book, workout_ids)
        session_ids = sorted(
            {event.payload.session_id for event in events if event.type in _SESSION_EVENT_TYPES}
        )
        if session_ids:
            await self._load_sessions(db, book, session_ids)
        return book

    async def _load_sessions(self, db: AsyncSession, book: UsageBook, ids: list[int]) -> None:
        """The sessions the batch names and their places, locked: two replicas never move
        one session at once (its events are in one partition, but a rebalance may hand it
        over mid-batch)."""
        for row in await db.execute(
            select(*(getattr(TrainerSession, c) for c in _SESSION_COLUMNS))
            .where(TrainerSession.session_id == any_of(ids, BIGINT))
            .order_by(TrainerSession.session_id)
            .with_for_update()
        ):
            book.sessions[row.session_id] = RuleSession(
                row.session_id,
                None if row.kind is None else SessionKind(row.kind),
                row.trainer_id,
                row.session_date,
                SessionStatus(row.status),
            )
        for place in await db.execute(
            select(SessionPlace.session_id, SessionPlace.user_id, SessionPlace.outcome).where(
                SessionPlace.session_id == any_of(ids, BIGINT)
            )
        ):
            book.places[place.session_id, place.user_id] = Place(place.outcome)

    async def _load_usages(self, db: AsyncSession, book: UsageBook, clients: list[int]) -> None:
        # Locked until commit, in one order: see the module's docstring.
        await db.execute(_ENSURE_USAGES, {"user_id": clients})
        # Rows rather than ORM objects: a batch loads hundreds of them.
        for row in await db.execute(
            select(UserUsage.user_id, *(getattr(UserUsage, c) for c in STORED_USAGE))
            .where(UserUsage.user_id == any_of(clients, BIGINT))
            .order_by(UserUsage.user_id)
            .with_for_update()
        ):
            book.usages[row.user_id] = ClientUsage(**row._asdict())
            book.completed[row.user_id] = Counter()
        counts = await db.execute(
            select(Workout.user_id, Workout.session_type, func.count())
            .where(
                Workout.user_id == any_of(clients, BIGINT),
                Workout.status == WorkoutStatus.COMPLETED,
            )
            .group_by(Workout.user_id, Workout.session_type)
        )
        for user_id, kind, count in counts:
            book.completed[user_id][SessionType(kind)] = count

    async def _load_workouts(
        self, db: AsyncSession, book: UsageBook, workout_ids: list[uuid.UUID]
    ) -> None:
        for known in await db.execute(
            select(
                Workout.workout_id,
                Workout.user_id,
                Workout.session_type,
                Workout.status,
                Workout.changed_by,
                Workout.workout_date,
                Workout.trainer_id,
            ).where(Workout.workout_id == any_of(workout_ids, UUID(as_uuid=True)))
        ):
            book.workouts[known.workout_id] = KnownWorkout(
                known.user_id,
                SessionType(known.session_type),
                WorkoutStatus(known.status),
                known.changed_by,
                known.workout_date,
                known.trainer_id,
            )

    async def write(self, db: AsyncSession, book: UsageBook) -> None:
        """Write everything the batch decided: one statement per table."""
        if book.changed_workouts:
            changed = [
                {
                    "workout_id": workout_id,
                    "user_id": workout.user_id,
                    "session_type": workout.session_type,
                    "status": workout.status,
                    "changed_by": workout.changed_by,
                    "workout_date": workout.date,
                    "trainer_id": workout.trainer_id,
                }
                for workout_id in sorted(book.changed_workouts)
                for workout in (book.workouts[workout_id],)
            ]
            await db.execute(_UPSERT_WORKOUTS, columns_of(changed, _WORKOUT_COLUMNS))
        days = [
            {"day": day, "session_type": kind, "completed": change}
            for (day, kind), change in sorted(book.day_changes.items())
            if change != 0
        ]
        if days:
            await db.execute(_ADD_TO_DAYS, columns_of(days, _DAY_COLUMNS))
        if book.changed_sessions:
            sessions = [
                {
                    "session_id": session.session_id,
                    "kind": session.kind,
                    "trainer_id": session.trainer_id,
                    "session_date": session.date,
                    "status": session.status,
                }
                for session_id in sorted(book.changed_sessions)
                for session in (book.sessions[session_id],)
            ]
            await db.execute(_UPSERT_SESSIONS, columns_of(sessions, _SESSION_COLUMNS))
        if book.changed_places:
            places = [
                {"session_id": session_id, "user_id": user_id, "outcome": book.places[key]}
                for key in sorted(book.changed_places)
                for session_id, user_id in (key,)
            ]
            await db.execute(_UPSERT_PLACES, columns_of(places, _PLACE_COLUMNS))
        changed_usages = [
            {c: getattr(usage, c) for c in ("user_id", *STORED_USAGE)}
            for _, usage in sorted(book.usages.items())
            if usage.changed
        ]
        if changed_usages:
            await db.execute(_UPDATE_USAGES, columns_of(changed_usages, ("user_id", *STORED_USAGE)))
        if book.credit_entries:
            entries = [
                {column: getattr(entry, column) for column in _ENTRY_COLUMNS}
                for entry in book.credit_entries
            ]
            await db.execute(_ADD_ENTRIES, columns_of(entries, _ENTRY_COLUMNS))
        if book.trainer_clients:
            pairs = [{"trainer_id": t, "user_id": u} for t, u in sorted(book.trainer_clients)]
            await db.execute(_ADD_TRAINER_CLIENTS, columns_of(pairs, _TRAINER_CLIENT_COLUMNS))
        await self.outbox.insert(db, self.outbox.prepare_decided(book.announcements(_new_id)))
