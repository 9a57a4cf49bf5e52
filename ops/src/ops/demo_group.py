"""The demo's group session, played through the platform's public interfaces.

A trainer schedules a class of five; five clients join, a sixth is refused (full), one leaves
and the sixth takes the place, and at the end one participant did not show. The four who
attended are charged one credit each, once, although the trainer logs each of their
workouts and one of them logs it again.
"""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from contracts.identity import Role
from ops.demo import (
    PURCHASE_ARRIVAL_TIMEOUT,
    SESSION_ARRIVAL_TIMEOUT,
    DemoFailed,
    Endpoints,
    Say,
    buy_package,
    call,
    call_once_arrived,
    sent,
)

CAPACITY = 5
PACKAGE_SESSIONS = 10


def _new_id() -> int:
    return random.randint(100_000, 2_000_000_000)


async def play_group_session(endpoints: Endpoints, say: Say, *, within: float = 60.0) -> str:
    """Play the class for six new clients and a new trainer; return what the ledger and the
    trainer's figures say once every credit is in."""
    trainer_id = _new_id()
    clients = [_new_id() for _ in range(CAPACITY + 1)]
    late_joiner, leaver, no_show = clients[-1], clients[-2], clients[-3]
    when = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
    say("")
    say("Scenario 3: a group session of five, with a late joiner, a leaver and a no-show")
    for client in clients:
        await buy_package(endpoints, client, sessions=PACKAGE_SESSIONS)
    say(f"  six clients each buy a {PACKAGE_SESSIONS}-session package")
    async with endpoints.client_for(Role.TRAINER, trainer_id) as trainer:
        group = await call(
            trainer.post(
                f"{endpoints.booking}/api/group-sessions",
                json={
                    "trainerId": trainer_id,
                    "sessionDate": when.isoformat(),
                    "capacity": CAPACITY,
                    "location": "Studio A",
                },
            )
        )
        session_id = int(group["id"])
        say(f"  trainer {trainer_id} schedules group session {session_id} for {CAPACITY}")
        places = f"{endpoints.booking}/api/group-sessions/{session_id}/participants"
        for client in clients[:CAPACITY]:
            await _join(endpoints, places, client)
        say(f"  clients {', '.join(map(str, clients[:CAPACITY]))} join")
        refusal = await _refused_as_full(endpoints, places, late_joiner)
        say(f"  client {late_joiner} asks to join: refused, {refusal}")
        async with endpoints.client_for(Role.CLIENT, leaver) as http:
            await call(http.delete(f"{places}/{leaver}"))
        say(f"  client {leaver} leaves")
        await _join(endpoints, places, late_joiner)
        say(f"  client {late_joiner} joins late, in the place given up")
        attended = [c for c in clients if c not in (leaver, no_show)]
        for client in attended:
            await _log_group_workout(trainer, endpoints, client, trainer_id, session_id, when)
        async with endpoints.client_for(Role.CLIENT, attended[0]) as http:
            await _log_group_workout(http, endpoints, attended[0], trainer_id, session_id, when)
        say(
            f"  the trainer logs the workout of each of the {len(attended)} who came; client "
            f"{attended[0]} logs theirs too"
        )
        await call(
            trainer.patch(
                f"{endpoints.booking}/api/group-sessions/{session_id}",
                json={"status": "completed", "noShows": [no_show]},
            )
        )
        say(f"  the trainer completes the session: client {no_show} did not show")
        say("Waiting for credits and analytics...")
        used = await _wait_for_credits(endpoints, clients, within=within)
        figures = await _wait_for_trainer(trainer, endpoints, trainer_id, within=within)
    return _render_group(clients, used, late_joiner, leaver, no_show, figures)


async def _refused_as_full(endpoints: Endpoints, places: str, client: int) -> str:
    """The sixth client asks for a place: refused because the class is full (once booking has
    heard of their purchase, it is the only reason left)."""
    deadline = asyncio.get_running_loop().time() + PURCHASE_ARRIVAL_TIMEOUT
    async with endpoints.client_for(Role.CLIENT, client) as http:
        while True:
            response = await sent(http.put(f"{places}/{client}"))
            if response.status_code != httpx.codes.CONFLICT:
                raise DemoFailed(f"a sixth client was not refused: {response.status_code}")
            detail = str(response.json().get("detail", ""))
            if "full" in detail or asyncio.get_running_loop().time() > deadline:
                return detail
            await asyncio.sleep(0.1)


async def _join(endpoints: Endpoints, places: str, client: int) -> Any:
    """The client joins. Booking hears of a purchase a moment after credits grants it, and
    refuses a client with nothing available until then (409): ask again, a while."""
    async with endpoints.client_for(Role.CLIENT, client) as http:
        return await call_once_arrived(
            lambda: http.put(f"{places}/{client}"),
            not_yet=httpx.codes.CONFLICT,
            within=PURCHASE_ARRIVAL_TIMEOUT,
        )


async def _log_group_workout(
    http: httpx.AsyncClient,
    endpoints: Endpoints,
    client: int,
    trainer_id: int,
    session_id: int,
    when: datetime,
) -> Any:
    """Workouts hears of the session (404) and of each place (409) a moment after booking."""
    workout = {
        "userId": client,
        "sessionType": "group",
        "sessionId": session_id,
        "trainerId": trainer_id,
        "title": "Circuit class",
        "date": when.isoformat(),
        "duration": 45,
    }
    return await call_once_arrived(
        lambda: http.post(f"{endpoints.workouts}/api/workout/sessions", json=workout),
        not_yet=(httpx.codes.NOT_FOUND, httpx.codes.CONFLICT),
        within=SESSION_ARRIVAL_TIMEOUT,
    )


async def _wait_for_credits(
    endpoints: Endpoints, clients: list[int], *, within: float
) -> dict[int, dict[str, Any]]:
    """Each client's balance once every attendee's credit shows (staff reads them all)."""
    deadline = asyncio.get_running_loop().time() + within
    async with endpoints.client_for(Role.STAFF, "demo") as staff:
        while True:
            balances = {
                client: await call(staff.get(f"{endpoints.credits}/api/credits/{client}"))
                for client in clients
            }
            if sum(balance["used"] for balance in balances.values()) >= CAPACITY - 1:
                return balances
            if asyncio.get_running_loop().time() > deadline:
                raise DemoFailed(f"credits did not charge the class within {within:.0f} s")
            await asyncio.sleep(0.3)


async def _wait_for_trainer(
    http: httpx.AsyncClient, endpoints: Endpoints, trainer_id: int, *, within: float
) -> dict[str, Any]:
    deadline = asyncio.get_running_loop().time() + within
    url = f"{endpoints.analytics}/api/analytics/trainers/{trainer_id}/sessions"
    while True:
        figures: dict[str, Any] = await call(http.get(url))
        if figures["delivered"]["group"] >= 1 and figures["noShows"] >= 1:
            return figures
        if asyncio.get_running_loop().time() > deadline:
            raise DemoFailed(f"analytics did not count the class within {within:.0f} s")
        await asyncio.sleep(0.3)


def _render_group(
    clients: list[int],
    balances: dict[int, dict[str, Any]],
    late_joiner: int,
    leaver: int,
    no_show: int,
    trainer: dict[str, Any],
) -> str:
    story = {late_joiner: "joined late, attended", leaver: "left", no_show: "did not show"}
    lines = ["Group session: one credit per client who attended, once", ""]
    lines.append(f"  {'client':<12}{'place':<24}{'used':>5}{'remaining':>11}")
    for client in clients:
        balance = balances[client]
        place = story.get(client, "attended")
        lines.append(f"  {client:<12}{place:<24}{balance['used']:>5}{balance['remaining']:>11}")
    charged = sum(balance["used"] for balance in balances.values())
    delivered = trainer["delivered"]
    lines += [
        "",
        f"Credits charged: {charged}",
        f"Trainer {trainer['trainerId']}: {delivered['total']} session delivered "
        f"({delivered['group']} group, {delivered['oneToOne']} one-to-one), "
        f"{trainer['clientsTrained']} clients trained, {trainer['noShows']} no-show",
    ]
    return "\n".join(lines)
