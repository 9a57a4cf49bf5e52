"""Session usage's use cases, in the business's words, a batch at a time.

A tracker is loaded inside the caller's transaction (the consumer's, with the batch's event
ids already remembered) for the clients and workouts a batch names, applies its events in
memory, and writes the result and its announcements of changed usage (through the outbox)
in that same transaction.

Why the final state does not depend on arrival order: a client's usage has two independent
halves. The workout counts depend only on `workouts.workout-sessions` and the credit balance
only on `credits.ledger`; each topic delivers one client's events in order (key `userId`),
and how the two topics interleave changes which intermediate usages are announced, never the
last one. Whether an event changes usage likewise depends only on its own topic's history,
so `asOf` (the latest change's time, see `_settle`) ends the same too.
"""

from __future__ import annotations

import contextlib
import uuid
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime

from sqlalchemy import func, select, text
from sqlalchemy.dialects.postgresql import BIGINT, UUID
from sqlalchemy.ext.asyncio import AsyncSession

from analytics.models import TrainerClient, UserUsage, Workout
from analytics.usage import CompletedWorkouts, SessionUsage
from contracts.events import Balance, SessionType, WorkoutStatus
from servicekit import tracing
from servicekit.db import any_of, columns_of, insert_rows
from servicekit.outbox import Announcement, Outbox

_USAGE_COLUMNS = ("solo_count", "trainer_led_count", "credits_total", "credits_used", "as_of")
_WORKOUT_COLUMNS = ("workout_id", "user_id", "session_type", "status", "changed_by")
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
    " status = excluded.status, changed_by = excluded.changed_by",
)


class UsageNotRecordable(Exception):
    """An event that can never be applied to usage; the message says why."""


class WorkoutOfAnotherClient(UsageNotRecordable):
    pass


@dataclass(slots=True)
class _Workout:
    user_id: int
    session_type: str
    status: str
    changed_by: str

    def counted(self) -> SessionType | None:
        """The session type it counts under in usage: only completed workouts count."""
        return SessionType(self.session_type) if self.status == WorkoutStatus.COMPLETED else None


@dataclass(slots=True)
class _Usage:
    """A client's usage row as loaded; `changed` once an event changed it."""

    user_id: int
    solo_count: int = 0
    trainer_led_count: int = 0
    credits_total: int = 0
    credits_used: int = 0
    as_of: datetime | None = None
    changed: bool = False


@dataclass
class UsageTracker:
    """Loaded for what one transaction touches (its clients' usage rows, locked, and its
    workouts), it decides in memory, one event after another in their order, and `write`s
    the result with one statement per table: a batch costs about what one event does."""

    session: AsyncSession
    outbox: Outbox
    _usages: dict[int, _Usage] = field(default_factory=dict)
    _counts: dict[int, Counter[SessionType]] = field(default_factory=dict)
    _workouts: dict[uuid.UUID, _Workout] = field(default_factory=dict)
    _changed_workouts: set[uuid.UUID] = field(default_factory=set)
    #: The clients whose usage changed, each with the trace context of its last change.
    _last_change: dict[int, tracing.Context | None] = field(default_factory=dict)
    #: (trainer, client) pairs the batch named together.
    _trainer_clients: set[tuple[int, int]] = field(default_factory=set)

    @classmethod
    async def load(
        cls,
        session: AsyncSession,
        outbox: Outbox,
        *,
        clients: Iterable[int],
        workouts: Iterable[uuid.UUID],
    ) -> UsageTracker:
        tracker = cls(session, outbox)
        await tracker._load(sorted(set(clients)), sorted(set(workouts)))
        return tracker

    async def _load(self, clients: list[int], workout_ids: list[uuid.UUID]) -> None:
        if clients:
            # Every change to one client's usage (from either topic, in any replica) waits
            # for the one before it: the rows are locked until commit, in one order.
            await self.session.execute(_ENSURE_USAGES, {"user_id": clients})
            # Rows rather than ORM objects: a batch loads hundreds of them.
            for row in await self.session.execute(
                select(UserUsage.user_id, *(getattr(UserUsage, c) for c in _USAGE_COLUMNS))
                .where(UserUsage.user_id == any_of(clients, BIGINT))
                .order_by(UserUsage.user_id)
                .with_for_update()
            ):
                self._usages[row.user_id] = _Usage(*row)
                self._counts[row.user_id] = Counter()
            counts = await self.session.execute(
                select(Workout.user_id, Workout.session_type, func.count())
                .where(
                    Workout.user_id == any_of(clients, BIGINT),
                    Workout.status == WorkoutStatus.COMPLETED,
                )
                .group_by(Workout.user_id, Workout.session_type)
            )
            for user_id, kind, count in counts:
                self._counts[user_id][SessionType(kind)] = count
        if workout_ids:
            for known in await self.session.execute(
                select(
                    Workout.workout_id,
                    Workout.user_id,
                    Workout.session_type,
                    Workout.status,
                    Workout.changed_by,
                ).where(Workout.workout_id == any_of(workout_ids, UUID(as_uuid=True)))
            ):
                self._workouts[known.workout_id] = _Workout(
                    known.user_id, known.session_type, known.status, known.changed_by
                )

    def record_workout(
        self,
        *,
        workout_id: uuid.UUID,
        user_id: int,
        session_type: SessionType,
        status: WorkoutStatus,
        changed_by: str,
        at: datetime,
    ) -> None:
        """A workout as its latest event describes it: logged, or its status changed. One
        never seen before is taken as it is described, so a history that starts midway
        (a status change without its WorkoutLogged) still counts."""
        workout = self._workouts.get(workout_id)
        if workout is not None and workout.user_id != user_id:
            raise WorkoutOfAnotherClient(
                f"workout {workout_id} belongs to client {workout.user_id}, not {user_id}"
            )
        counts = self._counts[user_id]
        if workout is not None and (before := workout.counted()) is not None:
            counts[before] -= 1
        workout = _Workout(user_id, session_type, status, changed_by)
        self._workouts[workout_id] = workout
        self._changed_workouts.add(workout_id)
        if (after := workout.counted()) is not None:
            counts[after] += 1
        usage = self._usages[user_id]
        completed = CompletedWorkouts.from_counts(dict(counts))
        self._settle(usage, replace(_usage_in(usage), workouts=completed), at=at)

    def record_credit_balance(self, *, user_id: int, balance: Balance, at: datetime) -> None:
        """The client's balance as the ledger's latest entry left it. One client's ledger
        events arrive in order (one partition), so the latest applied is the current one."""
        usage = self._usages[user_id]
        self._settle(usage, replace(_usage_in(usage), credits=balance), at=at)

    def record_trainer_of(self, *, user_id: int, trainer_id: int) -> None:
        """The trainer trains the client: an event named them together."""
        self._trainer_clients.add((trainer_id, user_id))

    def _settle(self, row: _Usage, usage: SessionUsage, *, at: datetime) -> None:
        """Keep `usage` unless it is what the client already had; `write` announces it.

        `asOf` is the time of the event that changed usage, and never moves backwards: an
        older event applied after a newer one (the two topics interleave freely) leaves it
        at the newer time. It is then the same after any arrival order, and after a rebuild.
        """
        if usage == _usage_in(row):
            return
        row.solo_count = usage.workouts.solo
        row.trainer_led_count = usage.workouts.trainer_led
        row.credits_total = usage.credits.total
        row.credits_used = usage.credits.used
        row.as_of = at if row.as_of is None else max(row.as_of, at)
        row.changed = True
        self._last_change[row.user_id] = tracing.current()

    async def write(self) -> None:
        """Write everything decided since loading: one statement per table."""
        if self._changed_workouts:
            changed = [
                {"workout_id": workout_id, "user_id": w.user_id, "session_type": w.session_type,
                 "status": w.status, "changed_by": w.changed_by}
                for workout_id in sorted(self._changed_workouts)
                for w in (self._workouts[workout_id],)
            ]  # fmt: skip
            await self.session.execute(_UPSERT_WORKOUTS, columns_of(changed, _WORKOUT_COLUMNS))
        changed_usages = [
            {c: getattr(usage, c) for c in ("user_id", *_USAGE_COLUMNS)}
            for _, usage in sorted(self._usages.items())
            if usage.changed
        ]
        if changed_usages:
            await self.session.execute(
                _UPDATE_USAGES, columns_of(changed_usages, ("user_id", *_USAGE_COLUMNS))
            )
        if self._trainer_clients:
            pairs = [{"trainer_id": t, "user_id": u} for t, u in sorted(self._trainer_clients)]
            await self.session.execute(
                _ADD_TRAINER_CLIENTS, columns_of(pairs, _TRAINER_CLIENT_COLUMNS)
            )
            self._trainer_clients.clear()
        await self.outbox.insert(self.session, self._announcements())
        self._last_change.clear()

    def _announcements(self) -> list[Announcement]:
        """One announcement per client whose usage changed: its usage as the batch left it,
        in the trace context of the event that last changed it. The usage topic is
        compacted (the latest per client is what counts), so the states a batch passed
        through are not worth a record each. Each gets a fresh id: the same cause can lead
        to different usages in different replays."""
        announcements = []
        for user_id, context in self._last_change.items():
            row = self._usages[user_id]
            assert row.as_of is not None  # set by the change
            with tracing.bound(context) if context else contextlib.nullcontext():
                announcement = _usage_in(row).announcement(user_id, as_of=row.as_of)
                announcements.append(self.outbox.prepare(announcement))
        return announcements


async def usage_of(session: AsyncSession, user_id: int) -> SessionUsage:
    """Current usage; a client the service has never heard of has none of anything."""
    row = await session.get(UserUsage, user_id)
    return SessionUsage() if row is None else _usage_in(row)


def _usage_in(row: UserUsage | _Usage) -> SessionUsage:
    return SessionUsage(
        workouts=CompletedWorkouts(solo=row.solo_count, trainer_led=row.trainer_led_count),
        credits=Balance(
            total=row.credits_total,
            used=row.credits_used,
            remaining=row.credits_total - row.credits_used,
        ),
    )
