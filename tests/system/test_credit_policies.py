"""Credit policies end to end, through the topics and the APIs of real processes: a month of
a hybrid client (a late cancel and a no-show under a 24-hour policy, solo workouts past the
allowance, the package expiring by the clock) and a month of an unlimited client with a
weekly cap."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from contracts import events
from contracts.envelope import parse_event
from contracts.events import CancellationPolicy, SessionBooked
from contracts.session_ids import session_id
from contracts.topics import CREDITS_LEDGER
from testkit.helpers import eventually, read_topic

from .conftest import Launch
from .platform import IsolatedPlatform

pytestmark = pytest.mark.infra

TRAINER = 456
#: The studio's policy: cancelling 24 hours or less before forfeits; so does a no-show.
STRICT = CancellationPolicy(late_cancel_hours=24, no_show_forfeits=True)
#: Publishes bookings as another platform service (producer 1's block of session ids).
PLATFORM = "/platform/example"
#: The grace the hybrid month runs with: its package expires within the test.
SHORT_GRACE_HOURS = 0.01


@pytest.fixture
async def quick_expiry(
    monkeypatch: pytest.MonkeyPatch, launch: Launch
) -> AsyncIterator[IsolatedPlatform]:
    """A platform whose credits service expires packages 36 s after their end, and looks
    for them twice a second."""
    monkeypatch.setenv("CREDITS_EXPIRY_GRACE_HOURS", str(SHORT_GRACE_HOURS))
    monkeypatch.setenv("CREDITS_CLOCK_INTERVAL_SECONDS", "0.5")
    async with launch() as started:
        yield started


async def ok(response: httpx.Response) -> Any:
    assert response.status_code in (200, 201), response.text
    return response.json()


async def book(
    platform: IsolatedPlatform, client: int, when: datetime, *, policy: CancellationPolicy | None
) -> int:
    """A session booked by another platform service, on `booking.sessions`."""
    session = session_id(1, random.randint(1, 2**39))
    booked = SessionBooked(
        session_id=session, user_id=client, trainer_id=TRAINER, session_date=when, policy=policy
    )
    await platform.publish([booked], source=PLATFORM)
    return session


async def log_session(
    http: httpx.AsyncClient, platform: IsolatedPlatform, client: int, session: int, when: datetime
) -> None:
    await ok(
        await http.post(
            platform.url("workouts") + "/api/workout/sessions",
            json={
                "userId": client,
                "sessionType": "trainer-led",
                "sessionId": session,
                "trainerId": TRAINER,
                "title": "Personal Training Session",
                "date": when.isoformat(),
            },
        )
    )


async def move(
    http: httpx.AsyncClient, platform: IsolatedPlatform, session: int, status: str
) -> None:
    """Through booking's API, once booking has read the session from its topic."""
    url = f"{platform.url('booking')}/api/sessions/{session}"

    async def booking_knows_it() -> bool:
        return (await http.get(url)).status_code == 200

    await eventually(booking_knows_it)
    await ok(await http.patch(url, json={"status": status}))


def figures(balance: dict[str, Any]) -> tuple[int, ...]:
    names = ("total", "used", "remaining", "held", "available", "expired")
    return tuple(balance[name] for name in names)


async def test_a_month_of_a_hybrid_client_with_a_late_cancel_a_no_show_and_an_expiry(
    quick_expiry: IsolatedPlatform,
) -> None:
    platform = quick_expiry
    client = random.randint(10_000, 99_999)
    now = datetime.now(UTC).replace(microsecond=0)
    start, end = now - timedelta(days=30), now
    await platform.publish(
        [
            events.PackagePurchased(
                purchase_id=f"hybrid-{client}",
                user_id=client,
                package_type="hybrid",
                sessions=8,
                solo_workouts=12,
                purchased_at=start,
                valid_until=end,
                package_name="Hybrid month",
            )
        ],
        source="/platform/store",
    )
    past = [start + timedelta(days=2 + 3 * n, hours=10) for n in range(7)]
    sessions = [await book(platform, client, when, policy=STRICT) for when in past]
    # The eighth is five days ahead: cancelled now, well before the 24 hours.
    ahead = await book(platform, client, now + timedelta(days=5), policy=STRICT)
    credits = f"{platform.url('credits')}/api/credits/{client}"
    async with platform.http() as http:
        for session, when in zip(sessions[:5], past, strict=False):
            await log_session(http, platform, client, session, when)
        for number in range(14):
            await ok(
                await http.post(
                    platform.url("workouts") + "/api/workout/sessions",
                    json={
                        "userId": client,
                        "title": f"Solo {number}",
                        "date": (start + timedelta(days=1 + number, hours=7)).isoformat(),
                    },
                )
            )
        await move(http, platform, sessions[5], "cancelled")  # after its time: late
        await move(http, platform, sessions[6], "no_show")
        await move(http, platform, ahead, "cancelled")

        async def month_charged() -> bool:
            return figures(await ok(await http.get(credits))) == (8, 7, 1, 0, 1, 0)

        await eventually(month_charged, within=30)

        async def expired() -> bool:
            return figures(await ok(await http.get(credits))) == (8, 7, 0, 0, 0, 1)

        await eventually(expired, within=90)
        [package] = await ok(await http.get(credits + "/packages"))
        assert (package["status"], package["used"], package["expired"], package["left"]) == (
            "expired",
            7,
            1,
            0,
        )
        assert (package["soloUsed"], package["soloOver"]) == (14, 2)
        ledger = await ok(await http.get(credits + "/ledger"))
        assert [line["kind"] for line in ledger if line["kind"] != "solo"] == [
            "grant",
            *["deduction"] * 5,
            "forfeit",
            "forfeit",
            "expiry",
        ]
        forfeits = {
            line["sessionId"]: line["cause"] for line in ledger if line["kind"] == "forfeit"
        }
        assert forfeits == {sessions[5]: "late-cancel", sessions[6]: "no-show"}
        [expiry] = [line for line in ledger if line["kind"] == "expiry"]
        assert datetime.fromisoformat(expiry["effectiveAt"]) == end
        assert {line["packageId"] for line in ledger if line["kind"] != "solo"} == {
            package["packageId"]
        }

        usage_url = f"{platform.url('analytics')}/api/analytics/{client}/session-usage"

        async def analytics_shows_it() -> bool:
            usage = await ok(await http.get(usage_url))
            return bool(usage["credits"]["expired"] == 1 and usage["credits"]["remaining"] == 0)

        await eventually(analytics_shows_it, within=30)

    def of_the_client(records: list[Any]) -> list[str]:
        parsed = (parse_event(record.value).payload for record in records)
        return [type(p).__name__ for p in parsed if getattr(p, "user_id", None) == client]

    records = await read_topic(
        platform.kafka_bootstrap,
        platform.topic_prefix + CREDITS_LEDGER.name,
        until=lambda records: "CreditsExpired" in of_the_client(records),
    )
    kinds = of_the_client(records)
    assert (kinds.count("SessionCreditForfeited"), kinds.count("CreditsExpired")) == (2, 1)
    assert kinds.count("SoloWorkoutCounted") == 14
    assert kinds.count("SessionCreditDeducted") == 5


async def test_a_month_of_an_unlimited_client_with_a_weekly_cap(
    platform: IsolatedPlatform,
) -> None:
    """Two sessions a week are the unlimited package's (amount 0); the third that week is
    paid by the pack of five."""
    client = random.randint(10_000, 99_999)
    now = datetime.now(UTC).replace(microsecond=0)
    monday = (now - timedelta(days=now.weekday() + 21)).replace(hour=9, minute=0, second=0)
    await platform.publish(
        [
            events.PackagePurchased(
                purchase_id=f"unlimited-{client}",
                user_id=client,
                package_type="unlimited",
                weekly_cap=2,
                purchased_at=monday - timedelta(days=1),
                valid_until=now + timedelta(days=10),
            ),
            events.PackagePurchased(
                purchase_id=f"pack-{client}",
                user_id=client,
                sessions=5,
                purchased_at=monday - timedelta(days=1),
            ),
        ],
        source="/platform/store",
    )
    # Monday, Wednesday and Friday of one week; Tuesday and Thursday of the next.
    days = [monday + timedelta(days=n) for n in (0, 2, 4, 8, 10)]
    sessions = [await book(platform, client, when, policy=None) for when in days]
    credits = f"{platform.url('credits')}/api/credits/{client}"
    async with platform.http() as http:

        async def both_packages_known() -> bool:
            return len(await ok(await http.get(credits + "/packages"))) == 2

        await eventually(both_packages_known)
        for session, when in zip(sessions, days, strict=True):
            await log_session(http, platform, client, session, when)

        async def month_charged() -> bool:
            return figures(await ok(await http.get(credits))) == (5, 1, 4, 0, 4, 0)

        await eventually(month_charged, within=30)
        packages = {p["packageType"]: p for p in await ok(await http.get(credits + "/packages"))}
        ledger = await ok(await http.get(credits + "/ledger"))
    paid = {
        line["sessionId"]: (line["packageId"], line["amount"])
        for line in ledger
        if line["kind"] == "deduction"
    }
    unlimited, pack = packages["unlimited"]["packageId"], packages["sessions"]["packageId"]
    # Which of the first week's three the pack pays depends on the order they are read;
    # that it pays exactly one of them does not.
    first_week = [paid[session] for session in sessions[:3]]
    assert sorted(first_week, key=str) == sorted(
        [(unlimited, 0), (unlimited, 0), (pack, -1)], key=str
    )
    assert [paid[session] for session in sessions[3:]] == [(unlimited, 0), (unlimited, 0)]
    assert (packages["sessions"]["used"], packages["sessions"]["left"]) == (1, 4)
