"""Parked deductions through the real broker, with workouts and credits as processes: a
trainer-led workout for a session nobody has booked yet is accepted and says so, its
deduction waits where staff (`GET /api/credits/pending`), the metrics and `ops status` see
it, through a restart, and each way out works: the booking arrives (the credit is
deducted), or staff cancel the workout (the deduction is withdrawn, and a booking that
comes after it charges nothing)."""

from __future__ import annotations

import json
import random
import signal
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from contracts.events import PackagePurchased, SessionBooked
from contracts.topics import CREDITS_LEDGER
from testkit.helpers import Record, read_topic

from .conftest import Launch
from .platform import IsolatedPlatform
from .test_observability import scrape
from .test_operator_commands import row_of, run_ops

pytestmark = pytest.mark.infra

WHEN = datetime(2026, 5, 4, 9, 0, tzinfo=UTC)


@pytest.fixture
async def platform(launch: Launch) -> AsyncIterator[IsolatedPlatform]:
    async with launch(services=("workouts", "credits")) as started:
        yield started


async def log_for_unknown_session(
    platform: IsolatedPlatform, staff: httpx.AsyncClient, client: int, trainer: int, session: int
) -> str:
    body = {
        "userId": client,
        "sessionType": "trainer-led",
        "sessionId": session,
        "trainerId": trainer,
        "title": "PT",
    }
    response = await staff.post(platform.url("workouts") + "/api/workout/sessions", json=body)
    assert response.status_code == 201, response.text
    assert response.json()["sessionKnown"] is False
    return str(response.json()["id"])


async def book_late(platform: IsolatedPlatform, session: int, client: int, trainer: int) -> None:
    """The session's booking arrives, from another platform service; then all is applied."""
    booked = SessionBooked(
        session_id=session, user_id=client, trainer_id=trainer, session_date=WHEN
    )
    await platform.publish([booked], source="/platform/kiosk")
    await platform.settled()


async def parked(platform: IsolatedPlatform, staff: httpx.AsyncClient) -> list[tuple[int, str]]:
    response = await staff.get(platform.url("credits") + "/api/credits/pending")
    assert response.status_code == 200, response.text
    return [(item["sessionId"], item["workoutId"]) for item in response.json()]


async def parked_gauge(platform: IsolatedPlatform) -> float:
    return (await scrape(platform.url("credits")))[("credits_parked_deductions", frozenset())]


async def parked_cell(platform: IsolatedPlatform) -> str:
    status = await run_ops(platform, "status")
    assert status.exit_code == 0, status.output
    return row_of(status.output, "credits")[-1]


async def used(platform: IsolatedPlatform, staff: httpx.AsyncClient, client: int) -> int:
    response = await staff.get(f"{platform.url('credits')}/api/credits/{client}")
    return int(response.json()["used"])


def event_of(record: Record) -> dict[str, Any]:
    event: dict[str, Any] = json.loads(record.value)
    return event


async def test_a_parked_deduction_is_seen_then_resolved_by_its_booking_or_by_cancelling_its_workout(
    platform: IsolatedPlatform,
) -> None:
    client, trainer = random.randint(10**6, 10**7), random.randint(10**6, 10**7)
    booked_late, called_off = random.sample(range(10**8, 10**9), 2)
    await platform.publish(
        [
            PackagePurchased(
                purchase_id=uuid.uuid4().hex, user_id=client, sessions=5, purchased_at=WHEN
            )
        ],
        source="/platform/store",
    )
    async with platform.http() as staff:
        first = await log_for_unknown_session(platform, staff, client, trainer, booked_late)
        second = await log_for_unknown_session(platform, staff, client, trainer, called_off)
        await platform.settled()

        assert await parked(platform, staff) == [(booked_late, first), (called_off, second)]
        assert await parked_gauge(platform) == 2
        assert (await parked_cell(platform)).startswith("2 (oldest ")
        assert await used(platform, staff, client) == 0

        # Counted from the database: a restarted process tells the same.
        platform.kill("credits", sig=signal.SIGTERM)
        await platform.start("credits")
        assert await parked_gauge(platform) == 2

        # One way out: the booking arrives (from another platform service, late).
        await book_late(platform, booked_late, client, trainer)
        assert await parked(platform, staff) == [(called_off, second)]
        assert await used(platform, staff, client) == 1
        workout = await staff.get(f"{platform.url('workouts')}/api/workout/sessions/{first}")
        assert workout.json()["sessionKnown"] is True

        # The other: staff cancel the workout; its deduction is withdrawn, never charged.
        cancelled = await staff.patch(
            f"{platform.url('workouts')}/api/workout/sessions/{second}",
            json={"status": "cancelled"},
        )
        assert (cancelled.status_code, cancelled.json()["status"]) == (200, "cancelled")
        await platform.settled()
        assert await parked(platform, staff) == []
        assert await parked_gauge(platform) == 0
        assert await parked_cell(platform) == "0"
        records = await read_topic(
            platform.kafka_bootstrap,
            platform.topic_prefix + CREDITS_LEDGER.name,
            until=lambda records: any(
                event_of(r)["type"] == "CreditDeductionRejected" for r in records
            ),
        )
        [withdrawal] = [
            event_of(r)["data"] for r in records if event_of(r)["type"] == "CreditDeductionRejected"
        ]
        assert (withdrawal["sessionId"], withdrawal["workoutId"]) == (called_off, second)

        await book_late(platform, called_off, client, trainer)
        assert await used(platform, staff, client) == 1
        ledger = await staff.get(f"{platform.url('credits')}/api/credits/{client}/ledger")
        assert [(line["kind"], line["sessionId"]) for line in ledger.json()] == [
            ("grant", None),
            ("deduction", booked_late),
        ]
