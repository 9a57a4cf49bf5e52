"""Exactly one credit per delivered session, against real processes: duplicates, a replay
from the earliest offset, a SIGKILL mid-stream, and a replica killed mid-stream."""

from __future__ import annotations

import asyncio
import json
import signal
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import psycopg
import pytest

from contracts.events import EventPayload, PackagePurchased, SessionBooked, WorkoutLogged
from contracts.topics import BOOKING_SESSIONS, COMMERCE_PACKAGES, CREDITS_LEDGER, WORKOUT_SESSIONS
from ops.groups import rewind_to_earliest
from servicekit.db import libpq_url
from testkit.helpers import committed_offsets, end_offsets, eventually, read_topic

from .conftest import Launch
from .platform import IsolatedPlatform

pytestmark = pytest.mark.infra

NOW = datetime(2026, 1, 15, 10, 0, tzinfo=UTC)
CREDITS_INPUTS = (BOOKING_SESSIONS, WORKOUT_SESSIONS, COMMERCE_PACKAGES)


def trainer_led_sessions(
    count: int, *, user_id: int = 7, trainer_id: int = 8
) -> list[EventPayload]:
    """A purchase, then each session booked and its workout logged, as other platform
    services would send them."""
    events: list[EventPayload] = [
        PackagePurchased(purchase_id="bulk", user_id=user_id, sessions=count, purchased_at=NOW)
    ]
    for session_id in range(1, count + 1):
        events.append(
            SessionBooked(
                session_id=session_id, user_id=user_id, trainer_id=trainer_id, session_date=NOW
            )
        )
        events.append(
            WorkoutLogged(
                workout_id=uuid.uuid4(),
                user_id=user_id,
                session_type="trainer-led",
                session_id=session_id,
                trainer_id=trainer_id,
                title="Personal Training Session",
                date=NOW,
                status="completed",
            )
        )
    return events


def deductions(platform: IsolatedPlatform) -> int:
    return _scalar(platform, "select count(*) from ledger_entries where kind = 'deduction'")


def used_credits(platform: IsolatedPlatform, user_id: int = 7) -> int:
    return _scalar(
        platform, "select coalesce(sum(used), 0) from balances where user_id = %s", user_id
    )


def _scalar(platform: IsolatedPlatform, query: str, *parameters: object) -> int:
    with psycopg.connect(libpq_url(platform.database_urls["credits"])) as connection:
        row = connection.execute(query, parameters).fetchone()
    return int(row[0]) if row else 0


async def ledger_snapshot(platform: IsolatedPlatform) -> list[tuple[object, ...]]:
    with psycopg.connect(libpq_url(platform.database_urls["credits"])) as connection:
        entries = connection.execute(
            "select id, user_id, kind, amount, session_id from ledger_entries order by id"
        ).fetchall()
        balances = connection.execute("select * from balances order by user_id").fetchall()
    return [*entries, *balances]


async def assert_announced_once_per_session(platform: IsolatedPlatform, sessions: int) -> None:
    """The ledger topic may carry an event twice after a crash, but always under the same id:
    every consumer sees one deduction per session."""
    topic = platform.topic_prefix + CREDITS_LEDGER.name

    def ids_by_session(records: list[object]) -> dict[int, set[str]]:
        found: dict[int, set[str]] = defaultdict(set)
        for record in records:
            event = json.loads(record.value)  # type: ignore[attr-defined]
            if event["type"] == "SessionCreditDeducted":
                found[event["data"]["sessionId"]].add(event["id"])
        return found

    records = await read_topic(
        platform.kafka_bootstrap,
        topic,
        until=lambda records: len(ids_by_session(records)) >= sessions,
        within=60,
    )
    found = ids_by_session(records)
    assert len(found) == sessions
    assert all(len(ids) == 1 for ids in found.values())


async def caught_up(platform: IsolatedPlatform, group: str) -> bool:
    committed = await committed_offsets(platform.kafka_bootstrap, group)
    for topic in CREDITS_INPUTS:
        ends = await end_offsets(platform.kafka_bootstrap, platform.topic_prefix + topic.name)
        if any(committed.get(partition, 0) < end for partition, end in ends.items() if end):
            return False
    return True


@pytest.fixture
async def credits_only(launch: Launch) -> AsyncIterator[IsolatedPlatform]:
    async with launch(services=("credits",)) as started:
        yield started


async def test_credits_killed_mid_stream_deducts_each_of_1000_sessions_exactly_once(
    credits_only: IsolatedPlatform,
) -> None:
    platform = credits_only
    await platform.publish(trainer_led_sessions(1000))
    await eventually(lambda: deductions(platform) >= 150, within=60)

    platform.kill("credits")
    interrupted_at = deductions(platform)
    assert interrupted_at < 1000, "the kill must land mid-stream"
    await platform.start("credits")

    await eventually(lambda: used_credits(platform) == 1000, within=180)
    await asyncio.sleep(1)  # anything still in flight would show as more than 1000
    assert deductions(platform) == 1000
    assert used_credits(platform) == 1000
    await assert_announced_once_per_session(platform, 1000)


async def test_two_replicas_one_killed_mid_stream_deduct_exactly_once(
    credits_only: IsolatedPlatform,
) -> None:
    platform = credits_only
    await platform.start("credits")  # a second replica in the same consumer group
    await platform.publish(trainer_led_sessions(600))
    await eventually(lambda: deductions(platform) >= 100, within=60)

    platform.kill("credits", replica=0)
    await eventually(lambda: used_credits(platform) == 600, within=180)
    await asyncio.sleep(1)
    assert deductions(platform) == 600
    await assert_announced_once_per_session(platform, 600)


async def test_a_consumer_group_replayed_from_the_earliest_offset_changes_nothing(
    credits_only: IsolatedPlatform,
) -> None:
    platform = credits_only
    events = trainer_led_sessions(200)
    await platform.publish(events + events[:50])  # and a few duplicates, resent as new events
    group = platform.topic_prefix + "credits"
    await eventually(lambda: caught_up(platform, group), within=120)
    before = await ledger_snapshot(platform)
    assert deductions(platform) == 200

    platform.kill("credits", sig=signal.SIGTERM)
    topics = [platform.topic_prefix + topic.name for topic in CREDITS_INPUTS]
    assert await rewind_to_earliest(platform.kafka_bootstrap, group, topics) == 18
    assert not await caught_up(platform, group)
    await platform.start("credits")
    await eventually(lambda: caught_up(platform, group), within=120)

    assert await ledger_snapshot(platform) == before
