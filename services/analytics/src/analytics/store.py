"""Where usage's rules meet the database: the clients and workouts a batch names, locked
and loaded before deciding, and what was decided written after, with one statement per
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

from analytics.models import TrainerClient, UserUsage, Workout
from analytics.rules import ClientUsage, KnownWorkout, UsageBook
from contracts.envelope import Event
from contracts.events import SessionType, WorkoutLogged, WorkoutStatus, WorkoutStatusChanged
from servicekit.db import any_of, columns_of, insert_rows
from servicekit.outbox import Outbox

_USAGE_COLUMNS = (
    "solo_count",
    "trainer_led_count",
    "credits_total",
    "credits_used",
    "credits_held",
    "credits_expired",
    "as_of",
)
_WORKOUT_COLUMNS = (
    "workout_id",
    "user_id",
    "session_type",
    "status",
    "changed_by",
    "workout_date",
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
    ("user_id", *_USAGE_COLUMNS),
    then="on conflict (user_id) do update set "
    + ", ".join(f"{name} = excluded.{name}" for name in _USAGE_COLUMNS),
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
    " workout_date = excluded.workout_date",
)


def _new_id() -> str:
    return str(uuid.uuid4())


@dataclass(frozen=True, slots=True)
class UsageStore:
    """The analytics consumer's `BatchStore`: a `UsageBook` per batch."""

    outbox: Outbox

    async def load(self, db: AsyncSession, events: Sequence[Event[Any]]) -> UsageBook:
        """Lock and load the usage of every client the events name, and the workouts."""
        book = UsageBook()
        clients = sorted({event.payload.user_id for event in events})
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
        return book

    async def _load_usages(self, db: AsyncSession, book: UsageBook, clients: list[int]) -> None:
        # Locked until commit, in one order: see the module's docstring.
        await db.execute(_ENSURE_USAGES, {"user_id": clients})
        # Rows rather than ORM objects: a batch loads hundreds of them.
        for row in await db.execute(
            select(UserUsage.user_id, *(getattr(UserUsage, c) for c in _USAGE_COLUMNS))
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
            ).where(Workout.workout_id == any_of(workout_ids, UUID(as_uuid=True)))
        ):
            book.workouts[known.workout_id] = KnownWorkout(
                known.user_id,
                SessionType(known.session_type),
                WorkoutStatus(known.status),
                known.changed_by,
                known.workout_date,
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
                }
                for workout_id in sorted(book.changed_workouts)
                for workout in (book.workouts[workout_id],)
            ]
            await db.execute(_UPSERT_WORKOUTS, columns_of(changed, _WORKOUT_COLUMNS))
        changed_usages = [
            {c: getattr(usage, c) for c in ("user_id", *_USAGE_COLUMNS)}
            for _, usage in sorted(book.usages.items())
            if usage.changed
        ]
        if changed_usages:
            await db.execute(
                _UPDATE_USAGES, columns_of(changed_usages, ("user_id", *_USAGE_COLUMNS))
            )
        if book.trainer_clients:
            pairs = [{"trainer_id": t, "user_id": u} for t, u in sorted(book.trainer_clients)]
            await db.execute(_ADD_TRAINER_CLIENTS, columns_of(pairs, _TRAINER_CLIENT_COLUMNS))
        await self.outbox.insert(db, self.outbox.prepare_decided(book.announcements(_new_id)))
