"""The publisher kit as another platform service uses it: `examples/booking_publisher.py`
books thousands of sessions in its own block of ids, connected as the `platform` principal,
while the booking API books its own; no id collides and every delivered session is charged
once."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from contracts.envelope import parse_event
from contracts.events import SessionCreditDeducted
from contracts.services import KAFKA_BOOTSTRAP_ENV
from contracts.session_ids import BOOKING_API, PRODUCERS, producer_of
from contracts.topics import BOOKING_SESSIONS, CREDITS_LEDGER, DEAD_LETTER_SUFFIX
from testkit.helpers import end_offsets, read_topic

from .platform import IsolatedPlatform

pytestmark = pytest.mark.infra

ROOT = Path(__file__).resolve().parents[2]
PUBLISHER = ROOT / "examples" / "booking_publisher.py"
EXAMPLE_PRODUCER = next(n for n, source in PRODUCERS.items() if source == "/platform/example")

EXTERNAL_SESSIONS = 5000
API_SESSIONS = 500
CLIENTS = 200
#: The API's bookings in flight at once, as several apps would send them.
API_CALLERS = 8


async def run_publisher(platform: IsolatedPlatform, tmp_path: Path) -> dict[str, list[int]]:
    """The example as its users run it: a process of its own, settings from the environment."""
    report = tmp_path / "published.json"
    environment = {
        **os.environ,
        **platform.principal_environment("platform"),
        KAFKA_BOOTSTRAP_ENV: platform.kafka_bootstrap,
        "KAFKA_TOPIC_PREFIX": platform.topic_prefix,
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(PUBLISHER),
        "--sessions",
        str(EXTERNAL_SESSIONS),
        "--clients",
        str(CLIENTS),
        "--seed",
        "12",
        "--state",
        str(tmp_path / "serials.json"),
        "--report",
        str(report),
        env=environment,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await process.communicate()
    assert process.returncode == 0, output.decode()
    assert f"published {EXTERNAL_SESSIONS} sessions" in output.decode()
    published: dict[str, list[int]] = json.loads(report.read_text())
    return published


async def book_through_the_api(platform: IsolatedPlatform) -> dict[str, list[int]]:
    """API_SESSIONS sessions booked, started and completed (every fifth cancelled) as staff."""
    booking = platform.url("booking")
    played: dict[str, list[int]] = {"completed": [], "cancelled": []}
    queue = list(range(API_SESSIONS))

    async def caller() -> None:
        async with platform.http() as http:
            while queue:
                number = queue.pop()
                response = await http.post(
                    f"{booking}/api/sessions",
                    json={
                        "userId": 1 + number % CLIENTS,
                        "trainerId": 2001,
                        "sessionDate": "2026-12-20T10:00:00Z",
                        "allowWithoutCredit": True,  # staff; credits are not the point here
                    },
                )
                assert response.status_code == 201, response.text
                session_id = response.json()["id"]
                steps = ["cancelled"] if number % 5 == 0 else ["in_progress", "completed"]
                for step in steps:
                    moved = await http.patch(
                        f"{booking}/api/sessions/{session_id}", json={"status": step}
                    )
                    assert moved.status_code == 200, moved.text
                played[steps[-1]].append(session_id)

    await asyncio.gather(*(caller() for _ in range(API_CALLERS)))
    return played


async def whole_topic(platform: IsolatedPlatform, topic: str) -> list[Any]:
    name = platform.topic_prefix + topic
    expected = sum((await end_offsets(platform.kafka_bootstrap, name)).values())
    return await read_topic(
        platform.kafka_bootstrap, name, until=lambda records: len(records) >= expected, within=60
    )


async def test_external_and_api_bookings_never_collide_and_each_delivery_is_charged_once(
    platform: IsolatedPlatform, tmp_path: Path
) -> None:
    published, api = await asyncio.gather(
        run_publisher(platform, tmp_path), book_through_the_api(platform)
    )
    await platform.settled(within=240)

    external_ids = [i for ids in published.values() for i in ids]
    api_ids = [i for ids in api.values() for i in ids]
    assert len(set(external_ids)) == EXTERNAL_SESSIONS
    assert {producer_of(i) for i in external_ids} == {EXAMPLE_PRODUCER}
    # The API's sequence was never dragged by the other producer's ids: it stayed at home.
    assert sorted(api_ids) == list(range(1, API_SESSIONS + 1))
    assert {producer_of(i) for i in api_ids} == {BOOKING_API}

    dead_letters = await whole_topic(platform, BOOKING_SESSIONS.name + DEAD_LETTER_SUFFIX)
    assert dead_letters == []

    deductions = Counter(
        event.payload.session_id
        for record in await whole_topic(platform, CREDITS_LEDGER.name)
        if isinstance((event := parse_event(record.value)).payload, SessionCreditDeducted)
    )
    delivered = set(published["completed"]) | set(api["completed"])
    assert len(delivered) == len(published["completed"]) + len(api["completed"])
    assert set(deductions) == delivered
    assert set(deductions.values()) == {1}

    # Booking says so too, for sessions of both producers.
    async with platform.http() as http:
        for session_id in (min(published["completed"]), max(api["completed"])):
            response = await http.get(f"{platform.url('booking')}/api/sessions/{session_id}")
            assert response.json()["sessionDeducted"] is True
        for session_id in (min(published["cancelled"]), min(api["cancelled"])):
            response = await http.get(f"{platform.url('booking')}/api/sessions/{session_id}")
            assert (response.json()["status"], response.json()["sessionDeducted"]) == (
                "cancelled",
                False,
            )
