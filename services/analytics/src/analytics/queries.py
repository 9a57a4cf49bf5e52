"""What the analytics API reads: a client's current usage, or over a date range."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from datetime import date

from sqlalchemy import ColumnElement, Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from analytics.models import UserUsage, Workout
from analytics.rules import ClientUsage, CompletedWorkouts, DateRange, SessionUsage
from contracts.events import SessionType, WorkoutStatus


async def usage_of(db: AsyncSession, user_id: int) -> SessionUsage:
    """Current usage; a client the service has never heard of has none of anything."""
    row = await db.get(UserUsage, user_id)
    if row is None:
        return SessionUsage()
    return ClientUsage(
        row.user_id,
        solo_count=row.solo_count,
        trainer_led_count=row.trainer_led_count,
        credits_total=row.credits_total,
        credits_used=row.credits_used,
        credits_held=row.credits_held,
        credits_expired=row.credits_expired,
    ).usage


async def usage_between(db: AsyncSession, user_id: int, span: DateRange) -> SessionUsage:
    """Usage with the workouts completed within `span` (those with a known date); the
    credits are the current balance, a range or not (the ledger's history is credits')."""
    usage = await usage_of(db, user_id)
    if not span.bounded:
        return usage
    counts = {
        SessionType(kind): count for kind, count in await db.execute(counts_within(user_id, span))
    }
    return replace(usage, workouts=CompletedWorkouts.from_counts(counts))


def counts_within(user_id: int, span: DateRange) -> Select[str, int]:
    """A client's completed workouts by type within `span`: served by the index on client,
    status and date alone (`workouts_by_user_status_and_date` includes the type)."""
    workouts = Workout.__table__.c
    return (
        select(workouts.session_type, func.count())
        .where(workouts.user_id == user_id, *_completed_within(span))
        .group_by(workouts.session_type)
    )


async def studio_usage(
    db: AsyncSession, span: DateRange
) -> tuple[CompletedWorkouts, list[tuple[date, CompletedWorkouts]]]:
    """Every client's completed workouts by type within `span`, and per week (from Monday,
    UTC). Without a range the total counts undated workouts too; weeks never do."""
    workouts = Workout.__table__.c
    week = func.date(func.timezone("UTC", func.date_trunc("week", workouts.workout_date, "UTC")))
    query = (
        select(week, workouts.session_type, func.count())
        .where(*_completed_within(span))
        .group_by(week, workouts.session_type)
        .order_by(week)
    )
    totals: Counter[SessionType] = Counter()
    weeks: dict[date, Counter[SessionType]] = {}
    for monday, kind, count in await db.execute(query):
        totals[SessionType(kind)] += count
        if monday is not None:
            weeks.setdefault(monday, Counter())[SessionType(kind)] += count
    return CompletedWorkouts.from_counts(dict(totals)), [
        (monday, CompletedWorkouts.from_counts(dict(counts))) for monday, counts in weeks.items()
    ]


def _completed_within(span: DateRange) -> list[ColumnElement[bool]]:
    """Completed, and taking place within `span` (a bound leaves undated workouts out)."""
    workouts = Workout.__table__.c
    conditions = [workouts.status == WorkoutStatus.COMPLETED]
    if span.start is not None:
        conditions.append(workouts.workout_date >= span.start)
    if span.end is not None:
        conditions.append(workouts.workout_date < span.end)
    return conditions
