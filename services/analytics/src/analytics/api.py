"""The analytics HTTP API: a client's session usage."""

from __future__ import annotations

from functools import partial
from typing import Annotated

from fastapi import APIRouter, Path, Request
from fastapi.responses import PlainTextResponse

from analytics.access import trains
from analytics.charts import render_usage_charts
from analytics.tracker import usage_of
from contracts.events import MAX_ID, Balance, ContractModel, TypeUsage
from servicekit.auth import Caller, CallerDep, require_client_records
from servicekit.runtime import ServiceRuntime

router = APIRouter(prefix="/api/analytics", tags=["analytics"])

UserId = Annotated[int, Path(gt=0, le=MAX_ID, description="The client's user id")]


class SessionUsageReport(ContractModel):
    """Completed workouts by type, with each type's share of them, and the credit balance."""

    total: int
    solo: TypeUsage
    trainer_led: TypeUsage
    credits: Balance


def _runtime(request: Request) -> ServiceRuntime:
    runtime: ServiceRuntime = request.app.state.runtime
    return runtime


async def _report(user_id: int, caller: Caller, request: Request) -> SessionUsageReport:
    """A client reads their own usage, a trainer that of the clients they train."""
    runtime = _runtime(request)
    async with runtime.database.sessions() as session:
        await require_client_records(caller, user_id, trains=partial(trains, session), what="usage")
        usage = await usage_of(session, user_id)
    return SessionUsageReport(
        total=usage.total, solo=usage.solo, trainer_led=usage.trainer_led, credits=usage.credits
    )


@router.get("/{user_id}/session-usage", response_model=SessionUsageReport)
async def get_session_usage(
    user_id: UserId, caller: CallerDep, request: Request
) -> SessionUsageReport:
    return await _report(user_id, caller, request)


@router.get("/{user_id}/session-usage/chart", response_class=PlainTextResponse)
async def get_session_usage_chart(user_id: UserId, caller: CallerDep, request: Request) -> str:
    """The dashboard's two charts (Workout Type Distribution, Session Credits) as text bars."""
    report = await _report(user_id, caller, request)
    return render_usage_charts(report.to_json_dict())
