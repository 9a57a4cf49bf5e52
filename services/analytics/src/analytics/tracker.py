"""Session usage's use cases, in the business's words.

Each one runs inside the caller's transaction (the consumer's, with the event's id already
remembered) and announces a change of usage in that same transaction, through the outbox.

Why the final state does not depend on arrival order: a client's usage has two independent
halves. The workout counts depend only on `workouts.workout-sessions` and the credit balance
only on `credits.ledger`; each topic delivers one client's events in order (key `userId`),
and how the two topics interleave changes which intermediate usages are announced, never the
last one. Whether an event changes usage likewise depends only on its own topic's history,
so `asOf` (the latest change's time, see `_settle`) ends the same too.
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from analytics.models import UserUsage, Workout
from analytics.usage import CompletedWorkouts, SessionUsage
from contracts.events import Balance, SessionType, WorkoutStatus
from servicekit.outbox import Outbox


class UsageNotRecordable(Exception):
    """An event that can never be applied to usage; the message says why."""


class WorkoutOfAnotherClient(UsageNotRecordable):
    pass


class UsageTracker:
    def __init__(self, session: AsyncSession, outbox: Outbox) -> None:
        self.session = session
        self.outbox = outbox

    async def record_workout(
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
        usage = await self._lock_usage_of(user_id)
        workout = await self.session.get(Workout, workout_id, with_for_update=True)
        if workout is None:
            self.session.add(
                Workout(
                    workout_id=workout_id,
                    user_id=user_id,
                    session_type=session_type,
                    status=status,
                    changed_by=changed_by,
                )
            )
        elif workout.user_id != user_id:
            raise WorkoutOfAnotherClient(
                f"workout {workout_id} belongs to client {workout.user_id}, not {user_id}"
            )
        else:
            workout.session_type = session_type
            workout.status = status
            workout.changed_by = changed_by
        await self.session.flush()
        completed = await self._completed_workouts_of(user_id)
        await self._settle(usage, replace(_usage_in(usage), workouts=completed), at=at)

    async def record_credit_balance(self, *, user_id: int, balance: Balance, at: datetime) -> None:
        """The client's balance as the ledger's latest entry left it. One client's ledger
        events arrive in order (one partition), so the latest applied is the current one."""
        usage = await self._lock_usage_of(user_id)
        await self._settle(usage, replace(_usage_in(usage), credits=balance), at=at)

    async def usage_of(self, user_id: int) -> SessionUsage:
        """Current usage; a client the service has never heard of has none of anything."""
        row = await self.session.get(UserUsage, user_id)
        return SessionUsage() if row is None else _usage_in(row)

    async def _settle(self, row: UserUsage, usage: SessionUsage, *, at: datetime) -> None:
        """Keep `usage` and announce it, unless it is what the client already had.

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
        # Written while holding the client's row lock, so per client the outbox (and then
        # the topic) holds the announcements in the order the changes were made. Each gets
        # a fresh id: the same cause can lead to different usages in different replays.
        await self.outbox.add(self.session, usage.announcement(row.user_id, as_of=row.as_of))

    async def _lock_usage_of(self, user_id: int) -> UserUsage:
        """The client's usage row, locked until commit: every change to one client's usage
        (from either topic, in any replica) waits for the one before it."""
        await self.session.execute(
            insert(UserUsage).values(user_id=user_id).on_conflict_do_nothing()
        )
        row = await self.session.get(UserUsage, user_id, with_for_update=True)
        assert row is not None, "inserted above when missing"
        return row

    async def _completed_workouts_of(self, user_id: int) -> CompletedWorkouts:
        counts = await self.session.execute(
            select(Workout.session_type, func.count())
            .where(Workout.user_id == user_id, Workout.status == WorkoutStatus.COMPLETED)
            .group_by(Workout.session_type)
        )
        return CompletedWorkouts.from_counts({SessionType(kind): n for kind, n in counts})


def _usage_in(row: UserUsage) -> SessionUsage:
    return SessionUsage(
        workouts=CompletedWorkouts(solo=row.solo_count, trainer_led=row.trainer_led_count),
        credits=Balance(
            total=row.credits_total,
            used=row.credits_used,
            remaining=row.credits_total - row.credits_used,
        ),
    )
