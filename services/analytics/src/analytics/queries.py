"""What the analytics API reads: a client's usage (current, or over a date range), their
recent workouts and ledger entries, the studio's usage, and a trainer's sessions."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import ColumnElement, Select, distinct, func, literal_column, select
from sqlalchemy.ext.asyncio import AsyncSession

from analytics.models import (
    LedgerEntry,
    SessionPlace,
    TrainerSession,
    UserUsage,
    Workout,
    WorkoutDay,
)
from analytics.rules import (
    COUNT_COLUMN_OF,
    STORED_USAGE,
    ClientUsage,
    CompletedWorkouts,
    DateRange,
    Place,
    SessionKind,
    SessionStatus,
    SessionUsage,
    day_of,
    monday_of,
)
from contracts.events import SessionType, WorkoutStatus


async def usage_of(db: AsyncSession, user_id: int) -> SessionUsage:
    """Current usage; a client the service has never heard of has none of anything."""
    row = await db.get(UserUsage, user_id)
    if row is None:
        return SessionUsage()
    return ClientUsage(row.user_id, **{name: getattr(row, name) for name in STORED_USAGE}).usage


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


#: How many of a client's latest workouts and ledger entries the dashboard lists.
RECENT = 10


async def recent_of(
    db: AsyncSession, user_id: int, limit: int = RECENT
) -> tuple[list[Workout], list[LedgerEntry]]:
    """A client's latest completed workouts (what the chart counts; undated ones last) and
    ledger entries, newest first: each read from its index on client (and status) and date."""
    workouts = await db.scalars(
        select(Workout)
        .where(Workout.user_id == user_id, Workout.status == WorkoutStatus.COMPLETED)
        .order_by(Workout.workout_date.desc().nulls_last(), Workout.workout_id)
        .limit(limit)
    )
    entries = await db.scalars(
        select(LedgerEntry)
        .where(LedgerEntry.user_id == user_id)
        .order_by(LedgerEntry.occurred_at.desc(), LedgerEntry.event_id)
        .limit(limit)
    )
    return list(workouts), list(entries)


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
    UTC). Without a range the total counts undated workouts too; weeks never do.

    Whole UTC days are added up from `workout_days` (a year is at most 366 rows per type,
    whatever the number of workouts); a bound inside a day counts that part of the day from
    the workouts themselves (`workouts_completed_by_date`). The total without a range is
    the sum of every client's usage, which counts undated workouts too."""
    days: Counter[tuple[date, SessionType]] = Counter()
    whole = _whole_days(span)
    if whole is None:
        # Within two days at most (not one whole day fits): both bounds are set.
        assert span.start is not None
        assert span.end is not None
        touched = sorted({day_of(span.start), day_of(span.end - timedelta(microseconds=1))})
        await _count_workouts_by_day(db, span, touched, days)
    else:
        first, end = whole
        await _count_days(db, first, end, days)
        if span.start is not None and first is not None and _midnight(first) != span.start:
            edge = DateRange(span.start, _midnight(first))
            await _count_workouts_by_day(db, edge, [day_of(span.start)], days)
        if span.end is not None and end is not None and _midnight(end) != span.end:
            await _count_workouts_by_day(db, DateRange(_midnight(end), span.end), [end], days)
    weeks: dict[date, Counter[SessionType]] = {}
    totals: Counter[SessionType] = Counter()
    for (day, kind), count in days.items():
        weeks.setdefault(monday_of(day), Counter())[kind] += count
        totals[kind] += count
    if not span.bounded:
        totals = await _every_clients_usage(db)
    return CompletedWorkouts.from_counts(totals), [
        (monday, CompletedWorkouts.from_counts(weeks[monday])) for monday in sorted(weeks)
    ]


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(), UTC)


def _whole_days(span: DateRange) -> tuple[date | None, date | None] | None:
    """The whole UTC days within `span`: the first and the day after the last (None: no
    bound on that side); None when not one whole day fits in it."""
    first = end = None
    if span.start is not None:
        moment = span.start.astimezone(UTC)
        first = moment.date() if moment.time() == time() else moment.date() + timedelta(days=1)
    if span.end is not None:
        end = span.end.astimezone(UTC).date()
    if first is not None and end is not None and first >= end:
        return None
    return first, end


async def _count_days(
    db: AsyncSession,
    first: date | None,
    end: date | None,
    into: Counter[tuple[date, SessionType]],
) -> None:
    await _add_rows(db, studio_days(first, end), into)


def studio_days(first: date | None, end: date | None) -> Select[date, str, int]:
    """The studio's completed workouts per whole UTC day from `first` until `end` (excluded;
    None: unbounded), by type: `workout_days`' rows, read from its primary key's order."""
    days = WorkoutDay.__table__.c
    query = select(days.day, days.session_type, days.completed).where(days.completed > 0)
    if first is not None:
        query = query.where(days.day >= first)
    if end is not None:
        query = query.where(days.day < end)
    return query


#: A workout's UTC day, as the index `workouts_completed_by_day` is built on (the zone a
#: literal, not a parameter, so that the planner matches the expression with the index).
WORKOUT_DAY = func.date(func.timezone(literal_column("'UTC'"), Workout.__table__.c.workout_date))


async def _count_workouts_by_day(
    db: AsyncSession,
    span: DateRange,
    touched: list[date],
    into: Counter[tuple[date, SessionType]],
) -> None:
    """The completed workouts of part of a day or two (`touched`), counted one by one."""
    await _add_rows(db, workouts_of_days(span, touched), into)


def workouts_of_days(span: DateRange, touched: list[date]) -> Select[date, str, int]:
    """The studio's completed workouts within `span` by UTC day and type, on the days
    `touched` (those `span` lies on): served by `workouts_completed_by_day`."""
    workouts = Workout.__table__.c
    return (
        select(WORKOUT_DAY, workouts.session_type, func.count())
        .where(WORKOUT_DAY.in_(touched), *_completed_within(span))
        .group_by(WORKOUT_DAY, workouts.session_type)
    )


async def _add_rows(
    db: AsyncSession, query: Select[date, str, int], into: Counter[tuple[date, SessionType]]
) -> None:
    for when, kind, count in await db.execute(query):
        into[when, SessionType(kind)] += count


async def _every_clients_usage(db: AsyncSession) -> Counter[SessionType]:
    usage = UserUsage.__table__.c
    sums = (func.coalesce(func.sum(usage[column]), 0) for column in COUNT_COLUMN_OF.values())
    row = (await db.execute(select(*sums))).one()
    return Counter(dict(zip(COUNT_COLUMN_OF, (int(count) for count in row), strict=True)))


@dataclass(frozen=True, slots=True)
class TrainerFigures:
    """One trainer's sessions over a range: see `trainer_figures`."""

    one_to_one: int = 0
    group: int = 0
    clients_trained: int = 0
    no_shows: int = 0
    trainer_assisted: int = 0

    @property
    def delivered(self) -> int:
        return self.one_to_one + self.group


async def trainer_figures(db: AsyncSession, trainer_id: int, span: DateRange) -> TrainerFigures:
    """Sessions delivered (one-to-one and group sessions completed), the distinct clients who
    attended one, the no-shows (one-to-one sessions missed, and places in group sessions not
    taken up), each dated by the session's date; and the completed trainer-assisted
    workouts naming the trainer, dated by the workout's. A trainer analytics knows nothing
    of has zeros."""
    delivered_query, places_query, assisted_query = trainer_queries(trainer_id, span)
    delivered = {SessionKind(kind): count for kind, count in await db.execute(delivered_query)}
    clients, no_shows = (await db.execute(places_query)).one()
    assisted = await db.scalar(assisted_query)
    return TrainerFigures(
        one_to_one=delivered.get(SessionKind.ONE_TO_ONE, 0),
        group=delivered.get(SessionKind.GROUP, 0),
        clients_trained=clients,
        no_shows=no_shows,
        trainer_assisted=assisted or 0,
    )


def trainer_queries(
    trainer_id: int, span: DateRange
) -> tuple[Select[str, int], Select[int, int], Select[int]]:
    """A trainer's three figures' queries: sessions delivered by kind; clients who attended
    and no-shows; trainer-assisted workouts. Each read by its index on trainer and date."""
    sessions = TrainerSession.__table__.c
    places = SessionPlace.__table__.c
    workouts = Workout.__table__.c
    delivered = (
        select(sessions.kind, func.count())
        .where(
            sessions.trainer_id == trainer_id,
            sessions.status == SessionStatus.COMPLETED,
            *_within(sessions.session_date, span),
        )
        .group_by(sessions.kind)
    )
    attended = (
        select(
            func.count(distinct(places.user_id)).filter(places.outcome == Place.ATTENDED),
            func.count().filter(places.outcome == Place.NO_SHOW),
        )
        .select_from(
            TrainerSession.__table__.join(
                SessionPlace.__table__, places.session_id == sessions.session_id
            )
        )
        .where(
            sessions.trainer_id == trainer_id,
            sessions.status.in_([SessionStatus.COMPLETED, SessionStatus.NO_SHOW]),
            *_within(sessions.session_date, span),
        )
    )
    assisted = select(func.count()).where(
        workouts.trainer_id == trainer_id,
        workouts.session_type == SessionType.TRAINER_ASSISTED,
        workouts.status == WorkoutStatus.COMPLETED,
        *_within(workouts.workout_date, span),
    )
    return delivered, attended, assisted


def _within(moment: ColumnElement[datetime | None], span: DateRange) -> list[ColumnElement[bool]]:
    """`moment` within `span` (a bound leaves rows without one out)."""
    conditions = []
    if span.start is not None:
        conditions.append(moment >= span.start)
    if span.end is not None:
        conditions.append(moment < span.end)
    return conditions


def _completed_within(span: DateRange) -> list[ColumnElement[bool]]:
    """Completed, and taking place within `span` (a bound leaves undated workouts out)."""
    workouts = Workout.__table__.c
    return [workouts.status == WorkoutStatus.COMPLETED, *_within(workouts.workout_date, span)]
