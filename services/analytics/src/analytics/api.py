"""The analytics HTTP API: a client's session usage, its charts, and its changes as they happen;
their recent workouts and ledger entries; the studio's usage; a trainer's sessions."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import date, datetime
from functools import partial
from typing import Annotated, Any, NamedTuple, Self

from fastapi import APIRouter, Depends, Header, HTTPException, Path, Query, Request
from fastapi.responses import PlainTextResponse
from fastapi.sse import EventSourceResponse, ServerSentEvent
from pydantic import Field
from sqlalchemy.ext.asyncio import AsyncSession

from analytics.access import trains
from analytics.charts import render_usage_charts
from analytics.queries import recent_of, studio_usage, trainer_figures, usage_between
from analytics.rules import BadRange, CompletedWorkouts, DateRange, SessionUsage
from analytics.stream import UsageStreams
from contracts.events import MAX_ID, Balance, ContractModel, TypeUsage
from servicekit.auth import Caller, CallerDep, forbidden, require_client_records
from servicekit.db import Database
from servicekit.runtime import Runtime

router = APIRouter(prefix="/api/analytics", tags=["analytics"])

UserId = Annotated[int, Path(gt=0, le=MAX_ID, description="The client's user id")]


class WorkoutShares(ContractModel):
    """Completed workouts by type, with each type's share of them."""

    total: int
    solo: TypeUsage
    trainer_led: TypeUsage
    trainer_assisted: TypeUsage
    group: TypeUsage

    @classmethod
    def of(cls, workouts: CompletedWorkouts, **more: Any) -> Self:
        """The shares of `workouts`, as usage computes them, and the subclass's `more`."""
        usage = SessionUsage(workouts=workouts)
        return cls(
            total=usage.total,
            solo=usage.solo,
            trainer_led=usage.trainer_led,
            trainer_assisted=usage.trainer_assisted,
            group=usage.group,
            **more,
        )


class SessionUsageReport(WorkoutShares):
    """Completed workouts by type, with each type's share of them, and the credit balance as
    the ledger last announced it (held, expired and available included)."""

    credits: Balance


class WeekUsage(WorkoutShares):
    #: The week's Monday (weeks run Monday to Sunday, UTC).
    week: date


class StudioUsageReport(WorkoutShares):
    """Every client's completed workouts by type, and the same per week."""

    weeks: list[WeekUsage]


class DeliveredSessions(ContractModel):
    total: int
    one_to_one: int
    group: int


class TrainerSessionsReport(ContractModel):
    """A trainer's sessions over a range, each dated by the session's date: delivered
    (one-to-one and group sessions completed), the distinct clients who attended one, the
    no-shows (one-to-one sessions and group places), and the completed trainer-assisted
    workouts naming the trainer (dated by the workout's date)."""

    trainer_id: int
    #: The range as asked (None: unbounded on that side).
    from_: Annotated[str | None, Field(alias="from")] = None
    to: str | None = None
    delivered: DeliveredSessions
    clients_trained: int
    no_shows: int
    trainer_assisted: int


class RecentWorkout(ContractModel):
    workout_id: uuid.UUID
    session_type: str
    #: When it took place (None: a workout known only from a status change).
    date: datetime | None
    trainer_id: int | None


class RecentLedgerEntry(ContractModel):
    #: The ledger event's type (`CreditsGranted`, `SessionCreditDeducted`, ...).
    type: str
    #: What it did to the remaining credits (+10 granted, -1 deducted, ...).
    change: int
    #: The credits remaining after it.
    remaining: int
    session_id: int | None
    #: Why, as the ledger said (a deduction's or forfeit's cause, a restoration's reason).
    detail: str | None
    at: datetime


class RecentReport(ContractModel):
    """A client's latest completed workouts and ledger entries, newest first."""

    workouts: list[RecentWorkout]
    ledger: list[RecentLedgerEntry]


STUDIO_RULE = "only staff and platform services read the studio-wide usage"
TRAINER_RULE = "a trainer reads only their own sessions; staff and platform services anyone's"


async def _may_read(db: AsyncSession, caller: Caller, user_id: int) -> None:
    """A client reads their own usage, a trainer that of the clients they train."""
    await require_client_records(caller, user_id, trains=partial(trains, db), what="usage")


class AskedRange(NamedTuple):
    """A range as parsed, and as asked (the trainer's answer repeats it)."""

    span: DateRange
    start: str | None
    end: str | None


def _asked_range(
    start: Annotated[
        str | None,
        Query(
            alias="from",
            max_length=40,
            description="Only workouts from this day (YYYY-MM-DD, UTC) or RFC 3339 time on",
            examples=["2026-01-01"],
        ),
    ] = None,
    end: Annotated[
        str | None,
        Query(
            alias="to",
            max_length=40,
            description="Only workouts until this day, included (YYYY-MM-DD, UTC), or before"
            " this RFC 3339 time",
            examples=["2026-01-31"],
        ),
    ] = None,
) -> AskedRange:
    try:
        return AskedRange(DateRange.between(start, end), start, end)
    except BadRange as bad:
        raise HTTPException(status_code=422, detail=str(bad)) from None


def _date_range(asked: Annotated[AskedRange, Depends(_asked_range)]) -> DateRange:
    return asked.span


DateRangeDep = Annotated[DateRange, Depends(_date_range)]
AskedRangeDep = Annotated[AskedRange, Depends(_asked_range)]


#: No range: every workout.
_ALL_TIME = DateRange()


async def _usage_report(
    db: AsyncSession, user_id: int, span: DateRange = _ALL_TIME
) -> SessionUsageReport:
    usage = await usage_between(db, user_id, span)
    return SessionUsageReport.of(usage.workouts, credits=usage.credits)


async def _report(
    user_id: int, caller: Caller, runtime: Runtime, span: DateRange
) -> SessionUsageReport:
    async with runtime.database.transaction() as db:
        await _may_read(db, caller, user_id)
        return await _usage_report(db, user_id, span)


async def read_usage_json(database: Database, user_id: int) -> str:
    """A client's usage in JSON, as the usage endpoint answers it (for its event stream)."""
    async with database.transaction() as db:
        return (await _usage_report(db, user_id)).model_dump_json(by_alias=True)


async def _readable_usage(user_id: UserId, caller: CallerDep, runtime: Runtime) -> int:
    """The usage endpoint's access check, run before a stream starts: a refusal is then an
    answer (401, 403), not a broken stream."""
    async with runtime.database.transaction() as db:
        await _may_read(db, caller, user_id)
    return user_id


_BAD_RANGE: dict[int | str, dict[str, Any]] = {
    422: {"description": "Invalid, or `from`/`to` not a date or an RFC 3339 time"}
}


@router.get("/session-usage", response_model=StudioUsageReport, responses=_BAD_RANGE)
async def get_studio_usage(
    caller: CallerDep, runtime: Runtime, span: DateRangeDep
) -> StudioUsageReport:
    """Staff (and platform services): the split over all clients, and per week, with
    `from` and `to` as for a client's usage. Weeks list only workouts with a known date."""
    if not caller.sees_everything:
        raise forbidden(STUDIO_RULE)
    async with runtime.database.transaction() as db:
        totals, weeks = await studio_usage(db, span)
    return StudioUsageReport.of(
        totals, weeks=[WeekUsage.of(workouts, week=monday) for monday, workouts in weeks]
    )


@router.get(
    "/trainers/{trainer_id}/sessions", response_model=TrainerSessionsReport, responses=_BAD_RANGE
)
async def get_trainer_sessions(
    trainer_id: Annotated[int, Path(gt=0, le=MAX_ID, description="The trainer's user id")],
    caller: CallerDep,
    runtime: Runtime,
    asked: AskedRangeDep,
) -> TrainerSessionsReport:
    """A trainer's sessions within `from`/`to` (as for a client's usage): staff and platform
    services read any trainer's, a trainer their own; clients 403. A trainer analytics has
    heard nothing of gets zeros, not 404 (it may simply have delivered nothing yet)."""
    if not (caller.sees_everything or caller.trainer_id == trainer_id):
        raise forbidden(TRAINER_RULE)
    async with runtime.database.transaction() as db:
        figures = await trainer_figures(db, trainer_id, asked.span)
    return TrainerSessionsReport(
        trainer_id=trainer_id,
        from_=asked.start,
        to=asked.end,
        delivered=DeliveredSessions(
            total=figures.delivered, one_to_one=figures.one_to_one, group=figures.group
        ),
        clients_trained=figures.clients_trained,
        no_shows=figures.no_shows,
        trainer_assisted=figures.trainer_assisted,
    )


@router.get("/{user_id}/session-usage", response_model=SessionUsageReport, responses=_BAD_RANGE)
async def get_session_usage(
    user_id: UserId, caller: CallerDep, runtime: Runtime, span: DateRangeDep
) -> SessionUsageReport:
    """With `from` and/or `to`: the workouts of that range (the credits stay current)."""
    return await _report(user_id, caller, runtime, span)


@router.get("/{user_id}/recent", response_model=RecentReport)
async def get_recent(user_id: UserId, caller: CallerDep, runtime: Runtime) -> RecentReport:
    """The client's latest completed workouts and ledger entries (up to 10 each, newest
    first): where their credits went. Read as the usage is: the client, their trainers,
    staff and services."""
    async with runtime.database.transaction() as db:
        await _may_read(db, caller, user_id)
        workouts, entries = await recent_of(db, user_id)
    return RecentReport(
        workouts=[
            RecentWorkout(
                workout_id=w.workout_id,
                session_type=w.session_type,
                date=w.workout_date,
                trainer_id=w.trainer_id,
            )
            for w in workouts
        ],
        ledger=[
            RecentLedgerEntry(
                type=e.entry_type,
                change=e.change,
                remaining=e.remaining,
                session_id=e.session_id,
                detail=e.detail,
                at=e.occurred_at,
            )
            for e in entries
        ],
    )


@router.get("/{user_id}/session-usage/events", response_class=EventSourceResponse)
async def stream_session_usage(
    user_id: Annotated[int, Depends(_readable_usage)],
    caller: CallerDep,
    request: Request,
    last_event_id: Annotated[
        str | None,
        Header(description="The id of the last event received: no repeat of that usage"),
    ] = None,
) -> AsyncIterator[ServerSentEvent]:
    """Server-sent events: the client's usage at once (`event: usage`, the usage endpoint's
    JSON as `data`), then again each time it changes; a comment every 15 s keeps the
    connection open. The stream ends when the bearer token expires (reconnect with a new
    one) or the service stops (reconnect after `retry`)."""
    streams: UsageStreams = request.app.state.usage_streams
    async for event in streams.events(
        user_id, last_event_id=last_event_id, expires_at=caller.expires_at
    ):
        yield event


@router.get(
    "/{user_id}/session-usage/chart", response_class=PlainTextResponse, responses=_BAD_RANGE
)
async def get_session_usage_chart(
    user_id: UserId,
    caller: CallerDep,
    runtime: Runtime,
    span: DateRangeDep,
    colour: Annotated[
        bool,
        Query(description="Colour each kind's bar (ANSI): solo green, trainer-led orange"),
    ] = False,
) -> str:
    """The dashboard's two charts (Workout Type Distribution, Session Credits) as text bars;
    `from` and `to` as for the usage."""
    report = await _report(user_id, caller, runtime, span)
    return render_usage_charts(report.to_json_dict(), colour=colour)
