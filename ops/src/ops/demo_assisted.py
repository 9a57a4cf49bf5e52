"""The demo's fourth scenario, played through the platform's public interfaces: a
trainer-assisted week. The trainer gives a plan, the client follows it alone three times and
runs once: nothing is charged, and the usage chart shows each kind in its colour, labelled.
"""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from contracts.identity import Role
from ops.demo import (
    DemoFailed,
    Endpoints,
    Say,
    buy_package,
    call,
    fetch_charts,
    log_solo_workout,
)

PACKAGE_SESSIONS = 10
PLAN_ID = "strength-base-4-weeks"


def _new_id() -> int:
    return random.randint(100_000, 2_000_000_000)


async def play_trainer_assisted_week(endpoints: Endpoints, say: Say) -> str:
    """A client follows a trainer's plan alone for a week; return the client's charts."""
    trainer_id, client_id = _new_id(), _new_id()
    monday = (datetime.now(UTC) - timedelta(days=14)).replace(
        hour=7, minute=0, second=0, microsecond=0
    )
    monday -= timedelta(days=monday.weekday())
    say("")
    say("Scenario 4: a trainer-assisted week")
    await buy_package(endpoints, client_id, sessions=PACKAGE_SESSIONS)
    say(f"  client {client_id} buys a {PACKAGE_SESSIONS}-session package")
    say(f"  trainer {trainer_id} gives them the plan {PLAN_ID!r}")
    async with endpoints.client_for(Role.CLIENT, client_id) as client:
        for offset, day in ((0, "Monday"), (2, "Wednesday"), (4, "Friday")):
            workout = {
                "userId": client_id,
                "sessionType": "trainer-assisted",
                "trainerId": trainer_id,
                "planId": PLAN_ID,
                "title": f"Plan, {day}",
                "date": (monday + timedelta(days=offset)).isoformat(),
                "duration": 50,
            }
            await call(client.post(f"{endpoints.workouts}/api/workout/sessions", json=workout))
            say(f"  {day}: the client follows the plan alone")
        await log_solo_workout(client, endpoints, client_id, monday + timedelta(days=6), "Long run")
        say("  Sunday: a solo run")
        usage = await _wait_for_usage(client, endpoints, client_id, total=4)
    balance = usage["credits"]
    charts = await fetch_charts(endpoints, client_id, colour=True)
    return (
        f"Trainer-assisted workouts: {usage['trainerAssisted']['count']}, solo: "
        f"{usage['solo']['count']}; credits used {balance['used']}, remaining "
        f"{balance['remaining']} of {balance['total']} (a plan followed alone is never "
        f"charged)\n\n{charts}"
    )


async def _wait_for_usage(
    http: httpx.AsyncClient, endpoints: Endpoints, client_id: int, *, total: int
) -> dict[str, Any]:
    """The client's usage once every workout and the package show."""
    deadline = asyncio.get_running_loop().time() + 60
    url = f"{endpoints.analytics}/api/analytics/{client_id}/session-usage"
    while True:
        usage: dict[str, Any] = await call(http.get(url))
        if usage["total"] >= total and usage["credits"]["total"] == PACKAGE_SESSIONS:
            return usage
        if asyncio.get_running_loop().time() > deadline:
            raise DemoFailed(f"analytics did not count the week within 60 s: {usage}")
        await asyncio.sleep(0.2)
