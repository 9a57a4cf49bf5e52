"""The demo's second scenario: a month of a hybrid client under a 24-hour late-cancel policy
(docs/credits.md tells the same month), played through the platform's public interfaces.

The store sells a hybrid package (6 trainer-led sessions, 4 solo workouts) whose month ended
just under the expiry grace ago, so that credits expires what is left of it within a minute
of the last session reaching it. Another platform service books the sessions on
`booking.sessions` with the studio's policy stamped on each (cancelling within 24 hours
forfeits, so does a no-show); the trainer logs four of them, the client five solo workouts;
the client cancels one session late and one well ahead; the trainer marks one missed. The
ledger that explains the balance is printed at the end.
"""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from contracts.events import CancellationPolicy, PackagePurchased, SessionBooked
from contracts.identity import Role
from contracts.session_ids import session_id
from ops.demo import (
    SESSION_ARRIVAL_TIMEOUT,
    TRAINER_ID,
    DemoFailed,
    Endpoints,
    Say,
    call,
    call_once_arrived,
    log_solo_workout,
    publish,
)

#: Credits' default expiry grace: the package's end is put just inside it.
EXPIRY_GRACE = timedelta(hours=48)
#: How long after the sessions are in the package's end passes the grace.
EXPIRY_IN = timedelta(seconds=40)
STRICT = CancellationPolicy(late_cancel_hours=24, no_show_forfeits=True)
#: The producer block another platform service books in (docs/publishing.md).
PLATFORM_PRODUCER, PLATFORM_SOURCE = 1, "/platform/example"
SESSIONS, SOLO_ALLOWANCE, SOLO_LOGGED = 6, 4, 5


async def play_hybrid_month(endpoints: Endpoints, say: Say, *, within: float = 120.0) -> int:
    """Play the month for a new client; return the client's id once its package expired."""
    client_id = random.randint(100_000, 2_000_000_000)
    end = datetime.now(UTC).replace(microsecond=0) - EXPIRY_GRACE + EXPIRY_IN
    start = end - timedelta(days=30)
    say("")
    say("Scenario 2: a hybrid month under a 24-hour late-cancel and no-show policy")
    say(
        f"Client {client_id} buys a hybrid package: {SESSIONS} trainer sessions and "
        f"{SOLO_ALLOWANCE} solo workouts, from {start:%d %b} until {end:%d %b %H:%M} UTC"
    )
    purchase = PackagePurchased(
        purchase_id=f"demo-hybrid-{client_id}",
        user_id=client_id,
        package_type="hybrid",
        sessions=SESSIONS,
        solo_workouts=SOLO_ALLOWANCE,
        valid_until=end,
        purchased_at=start,
        package_name="Hybrid month",
    )
    await publish(endpoints, [purchase], source="/platform/store")
    days = [start + timedelta(days=3 + 5 * n, hours=10) for n in range(SESSIONS - 1)]
    # The last is booked for after the month and cancelled well ahead of its day.
    days.append(datetime.now(UTC).replace(microsecond=0) + timedelta(days=5))
    bookings = [
        SessionBooked(
            session_id=session_id(PLATFORM_PRODUCER, random.randint(1, 2**39)),
            user_id=client_id,
            trainer_id=TRAINER_ID,
            session_date=when,
            policy=STRICT,
        )
        for when in days
    ]
    await publish(endpoints, list(bookings), source=PLATFORM_SOURCE)
    say(f"  another platform service books {SESSIONS} sessions, each under the 24-hour policy")
    sessions = [booked.session_id for booked in bookings]
    async with (
        endpoints.client_for(Role.CLIENT, client_id) as client,
        endpoints.client_for(Role.TRAINER, TRAINER_ID) as trainer,
    ):
        for number, (session, when) in enumerate(zip(sessions[:3], days, strict=False), 1):
            await log_trainer_led(trainer, endpoints, client_id, session, when)
            say(f"  {when:%d %b}: trainer session {number} delivered")
        for number in range(SOLO_LOGGED):
            when = start + timedelta(days=2 + 4 * number, hours=7)
            await log_solo_workout(client, endpoints, client_id, when, f"Solo run {number + 1}")
        say(f"  the client logs {SOLO_LOGGED} solo workouts (allowance {SOLO_ALLOWANCE})")
        await move(client, endpoints, sessions[3], "cancelled")
        say(f"  {days[3]:%d %b}: the client cancels session 4 after its time: a late cancel")
        await move(trainer, endpoints, sessions[4], "no_show")
        say(f"  {days[4]:%d %b}: the client misses session 5: a no-show")
        await move(client, endpoints, sessions[5], "cancelled")
        say(f"  {days[5]:%d %b}: session 6, cancelled five days ahead: nothing forfeited")
        say("Waiting for the month's end to pass its 48-hour grace and the package to expire...")
        await wait_for_expiry(client, endpoints, client_id, within=within)
    return client_id


async def log_trainer_led(
    http: httpx.AsyncClient, endpoints: Endpoints, user_id: int, session: int, when: datetime
) -> None:
    workout = {
        "userId": user_id,
        "sessionType": "trainer-led",
        "sessionId": session,
        "trainerId": TRAINER_ID,
        "title": "Personal Training Session",
        "date": when.isoformat(),
    }
    await call_once_arrived(
        lambda: http.post(f"{endpoints.workouts}/api/workout/sessions", json=workout),
        not_yet=httpx.codes.NOT_FOUND,
        within=SESSION_ARRIVAL_TIMEOUT,
    )


async def move(http: httpx.AsyncClient, endpoints: Endpoints, session: int, status: str) -> None:
    """Through booking's API, once booking has read the session from its topic."""
    await call_once_arrived(
        lambda: http.patch(f"{endpoints.booking}/api/sessions/{session}", json={"status": status}),
        not_yet=httpx.codes.NOT_FOUND,
        within=SESSION_ARRIVAL_TIMEOUT,
    )


async def wait_for_expiry(
    http: httpx.AsyncClient, endpoints: Endpoints, user_id: int, *, within: float
) -> None:
    deadline = asyncio.get_running_loop().time() + within
    url = f"{endpoints.credits}/api/credits/{user_id}"
    while True:
        balance = await call(http.get(url))
        if balance["expired"] > 0:
            return
        if asyncio.get_running_loop().time() > deadline:
            raise DemoFailed(f"the package did not expire within {within:.0f} s: {balance}")
        await asyncio.sleep(0.5)


async def month_report(endpoints: Endpoints, user_id: int) -> str:
    """The client's balance, package and ledger, as the client reads them."""
    async with endpoints.client_for(Role.CLIENT, user_id) as http:
        base = f"{endpoints.credits}/api/credits/{user_id}"
        balance = await call(http.get(base))
        ledger = await call(http.get(f"{base}/ledger"))
    return render_month(balance, ledger)


def render_month(balance: dict[str, Any], ledger: list[dict[str, Any]]) -> str:
    lines = ["Ledger (solo workouts counted against the allowance left out)", ""]
    lines.append(f"  {'kind':<12}{'amount':>7}  {'day':<12}{'cause':<16}{'remaining':>9}")
    for line in ledger:
        if line["kind"] == "solo":
            continue
        day = datetime.fromisoformat(line["effectiveAt"]) if line["effectiveAt"] else None
        lines.append(
            f"  {line['kind']:<12}{line['amount']:>+7}  {f'{day:%d %b}' if day else '':<12}"
            f"{line['cause'] or '':<16}{line['remainingAfter']:>9}"
        )
    lines.append("")
    figures = ("total", "used", "expired", "remaining", "held", "available")
    lines.append("Balance: " + ", ".join(f"{name} {balance[name]}" for name in figures))
    for package in balance["packages"]:
        lines.append(
            f"Package {package['name']}: {package['used']} used, {package['expired']} expired, "
            f"{package['left']} left ({package['status']}); solo {package['soloUsed']} of "
            f"{package['soloWorkouts']} ({package['soloOver']} over)"
        )
    return "\n".join(lines)
