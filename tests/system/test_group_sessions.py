"""Group sessions against real processes: one credit per client who attended, once, with
every record delivered twice and credits killed mid-way, and through every service's API."""

from __future__ import annotations

import json
import random
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta

import pytest

from contracts.envelope import build_event, encode, partition_key, topic_of
from contracts.events import (
    EventPayload,
    GroupSessionCompleted,
    GroupSessionScheduled,
    PackagePurchased,
    ParticipantJoined,
    ParticipantLeft,
    WorkoutLogged,
)
from contracts.topics import CREDITS_LEDGER
from testkit.helpers import eventually, read_topic

from .conftest import Launch
from .platform import IsolatedPlatform

pytestmark = pytest.mark.infra

DAY = datetime(2026, 3, 2, 18, 0, tzinfo=UTC)
TRAINER = 8
CAPACITY = 5


def group_story(session_id: int, clients: list[int]) -> tuple[list[EventPayload], set[int]]:
    """A class of five: five join, one leaves, a sixth joins late, one does not show, and the
    trainer logs a group workout for each of the four who came. Returns the events and the
    clients who attended."""
    first, late_joiner = clients[:CAPACITY], clients[CAPACITY]
    leaver, no_show = first[-1], first[-2]
    attended = [client for client in [*first, late_joiner] if client not in (leaver, no_show)]
    joined = [
        ParticipantJoined(
            session_id=session_id,
            user_id=client,
            trainer_id=TRAINER,
            session_date=DAY,
            at=DAY - timedelta(days=3),
        )
        for client in first
    ]
    events: list[EventPayload] = [
        GroupSessionScheduled(
            session_id=session_id, trainer_id=TRAINER, session_date=DAY, capacity=CAPACITY
        ),
        *joined,
        ParticipantLeft(
            session_id=session_id, user_id=leaver, trainer_id=TRAINER, at=DAY - timedelta(days=2)
        ),
        ParticipantJoined(
            session_id=session_id,
            user_id=late_joiner,
            trainer_id=TRAINER,
            session_date=DAY,
            at=DAY - timedelta(days=1),
        ),
        *(group_workout(session_id, client) for client in attended),
        GroupSessionCompleted(
            session_id=session_id,
            trainer_id=TRAINER,
            at=DAY + timedelta(hours=1),
            attended=attended,
            no_shows=[no_show],
        ),
    ]
    return events, set(attended)


def group_workout(session_id: int, client: int) -> WorkoutLogged:
    return WorkoutLogged(
        workout_id=uuid.uuid4(),
        user_id=client,
        session_type="group",
        session_id=session_id,
        trainer_id=TRAINER,
        group_size=CAPACITY,
        title="Circuit class",
        date=DAY,
        status="completed",
    )


def records_of(payloads: Sequence[EventPayload]) -> list[tuple[str, bytes, bytes]]:
    """Each event as one record (topic without prefix, key, value), its id fixed."""
    return [
        (
            topic_of(payload).name,
            partition_key(payload),
            encode(build_event(payload, source="/platform/classes", time=DAY)),
        )
        for payload in payloads
    ]


@pytest.fixture
async def credits_only(launch: Launch) -> AsyncIterator[IsolatedPlatform]:
    async with launch(services=("credits",)) as started:
        yield started


async def test_group_sessions_charge_each_attendee_once_with_every_record_twice_and_a_kill(
    credits_only: IsolatedPlatform,
) -> None:
    platform = credits_only
    chooser = random.Random(15)
    clients = list(range(1001, 1031))
    groups = 120
    purchases: list[EventPayload] = [
        PackagePurchased(
            purchase_id=f"classes-{client}", user_id=client, sessions=100, purchased_at=DAY
        )
        for client in clients
    ]
    stories = [group_story(session, chooser.sample(clients, 6)) for session in range(1, groups + 1)]
    expected = {
        (session, client) for session, (_, came) in enumerate(stories, 1) for client in came
    }
    # Every record twice (a producer's retry), and the workouts once more as new events (a
    # second logging of the same attendance, with ids of their own). Credits is killed
    # while it works through the first half and the second half waits for it.
    half = groups // 2
    first = records_of(purchases + [event for events, _ in stories[:half] for event in events])
    second = records_of([event for events, _ in stories[half:] for event in events])
    again = records_of(
        [group_workout(session, client) for session, client in sorted(expected)][::3]
    )
    for topic, key, value in [record for record in first for _ in (0, 1)]:
        await platform.publish_raw(topic, value, key=key)
    await eventually(lambda: sum(platform.deductions().values()) > 0, within=90)
    platform.kill("credits")
    assert sum(platform.deductions().values()) < len(expected)
    for topic, key, value in [record for record in second for _ in (0, 1)] + again:
        await platform.publish_raw(topic, value, key=key)
    await platform.start("credits")

    await eventually(lambda: sum(platform.deductions().values()) >= len(expected), within=180)
    await platform.settled()
    found = platform.deductions()
    assert set(found) == expected
    assert set(found.values()) == {1}
    assert len(expected) == 4 * groups

    announced: dict[tuple[int, int], set[str]] = defaultdict(set)
    ledger = await read_topic(
        platform.kafka_bootstrap,
        platform.topic_prefix + CREDITS_LEDGER.name,
        until=lambda got: sum(b"SessionCreditDeducted" in r.value for r in got) >= len(expected),
        within=60,
    )
    for record in ledger:
        event = json.loads(record.value)
        if event["type"] == "SessionCreditDeducted":
            data = event["data"]
            announced[(data["sessionId"], data["userId"])].add(event["id"])
    assert set(announced) == expected
    assert all(len(ids) == 1 for ids in announced.values())
