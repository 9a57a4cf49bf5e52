"""Targeted replays of credits on a copy of the platform (`ops replay credits --from TIME`,
`--topic TOPIC`, the code behind them): its consumer group is moved only where asked — to the
first record at or after the time, on the chosen topic —, the service consumes exactly those
records again (its own ledger from the time too, read first), progress counts them and
nothing else, and no state changes. A group that had not got to the time yet is not moved
forward: what it had not consumed is consumed, never skipped."""

from __future__ import annotations

import dataclasses
import math
from collections import Counter
from collections.abc import AsyncIterator, Iterable
from datetime import UTC, datetime

import pytest
from aiokafka.structs import TopicPartition

from contracts.events import EventPayload, PackagePurchased, SessionBooked, SessionCompleted
from contracts.topics import BOOKING_SESSIONS, COMMERCE_PACKAGES, CREDITS_LEDGER, Topic
from ops import recovery
from ops.inputs import input_topic_names
from ops.progress import Progress
from ops.recovery import ServiceControl
from testkit.helpers import Record, committed_offsets, end_offsets, read_topic

from .conftest import Launch
from .platform import IsolatedPlatform
from .state import business_state, differences
from .test_observability import scrape

pytestmark = pytest.mark.infra

SERVICE = "credits"
BOOKED_FOR = datetime(2026, 5, 4, 10, 0, tzinfo=UTC)
TRAINER = 456
POLL_INTERVAL = 0.25


@pytest.fixture
async def platform(launch: Launch) -> AsyncIterator[IsolatedPlatform]:
    async with launch(services=(SERVICE,)) as started:
        yield started


def delivered_sessions(users: Iterable[int]) -> list[EventPayload]:
    """Per client, as other platform services publish them: a package bought, a session
    booked and completed (credits deducts it: two entries on its ledger)."""
    payloads: list[EventPayload] = []
    for user in users:
        moved = {"session_id": user, "user_id": user, "trainer_id": TRAINER}
        payloads += [
            PackagePurchased(
                purchase_id=f"p-{user}", user_id=user, sessions=5, purchased_at=BOOKED_FOR
            ),
            SessionBooked(**moved, session_date=BOOKED_FOR),
            SessionCompleted(**moved, at=BOOKED_FOR),
        ]
    return payloads


async def play(platform: IsolatedPlatform, users: Iterable[int]) -> None:
    await platform.publish(delivered_sessions(users))
    await platform.settled()


async def records_of(platform: IsolatedPlatform, topics: list[str]) -> dict[str, list[Record]]:
    """Every record of each topic, read without a consumer group."""
    found: dict[str, list[Record]] = {}
    for topic in topics:
        count = sum((await end_offsets(platform.kafka_bootstrap, topic)).values())

        def all_read(records: list[Record], count: int = count) -> bool:
            return len(records) >= count

        found[topic] = await read_topic(platform.kafka_bootstrap, topic, until=all_read)
    return found


async def input_ends(platform: IsolatedPlatform, topics: list[str]) -> dict[TopicPartition, int]:
    ends: dict[TopicPartition, int] = {}
    for topic in topics:
        ends.update(await end_offsets(platform.kafka_bootstrap, topic))
    return ends


def offsets_since(
    records: dict[str, list[Record]], ends: dict[TopicPartition, int], since: datetime
) -> dict[TopicPartition, int]:
    """What Kafka's offsets for a time should be, worked out from the records themselves: the
    first record stamped (in milliseconds) at or after `since`, else the partition's end."""
    moment = math.floor(since.timestamp() * 1000)
    start = dict(ends)
    for topic_records in records.values():
        for record in sorted(topic_records, key=lambda r: -r.offset):
            if record.timestamp >= moment:
                start[TopicPartition(record.topic, record.partition)] = record.offset
    return start


def watched(platform: IsolatedPlatform) -> tuple[ServiceControl, list[dict[TopicPartition, int]]]:
    """The service's control, noting the group's committed offsets each time it is started:
    where the rewind left them, before the service has consumed anything."""
    control = platform.control(SERVICE)
    seen: list[dict[TopicPartition, int]] = []

    async def start() -> None:
        seen.append(
            await committed_offsets(platform.kafka_bootstrap, platform.topic_prefix + SERVICE)
        )
        await control.start()

    return dataclasses.replace(control, start=start), seen


async def consumed_per_topic(platform: IsolatedPlatform) -> Counter[str]:
    """What the running service's consumer has finished with since it started, by topic."""
    consumed: Counter[str] = Counter()
    for (metric, labels), value in (await scrape(platform.url(SERVICE))).items():
        if metric == "platform_events_consumed_total":
            consumed[dict(labels)["topic"]] += int(value)
    return consumed


def records_from(start: dict[TopicPartition, int], ends: dict[TopicPartition, int]) -> Counter[str]:
    """How many records each topic has between `start` and `ends`."""
    counts: Counter[str] = Counter()
    for partition, end in ends.items():
        counts[partition.topic] += end - start[partition]
    return +counts


def only(offsets: dict[TopicPartition, int], topic: str) -> dict[TopicPartition, int]:
    return {partition: offset for partition, offset in offsets.items() if partition.topic == topic}


def all_but(offsets: dict[TopicPartition, int], topic: str) -> dict[TopicPartition, int]:
    return {partition: offset for partition, offset in offsets.items() if partition.topic != topic}


def assert_progress_counts(updates: list[Progress], outcome: recovery.Outcome, total: int) -> None:
    assert outcome.records == total
    assert updates, "no progress was reported"
    assert (updates[-1].done, updates[-1].total) == (total, total)
    assert all(update.total == total for update in updates), "progress counted other records"


async def test_a_replay_from_a_time_consumes_again_only_the_records_since_then(
    platform: IsolatedPlatform,
) -> None:
    topics = input_topic_names(SERVICE, platform.topic_prefix)
    await play(platform, range(1, 13))
    since = datetime.now(UTC)
    await play(platform, [13])
    ends = await input_ends(platform, topics)
    expected = offsets_since(await records_of(platform, topics), ends, since)
    before = business_state(SERVICE, platform.database_urls[SERVICE])
    control, seen = watched(platform)
    updates: list[Progress] = []
    steps: list[str] = []

    outcome = await recovery.replay(
        platform.target(SERVICE),
        control,
        updates.append,
        since=since,
        say=steps.append,
        poll_interval=POLL_INTERVAL,
    )

    rewound = {partition: seen[0].get(partition) for partition in ends}
    assert rewound == expected
    assert (
        f"credits: consumer group {platform.topic_prefix}credits rewound to the offsets of "
        f"{since.isoformat()} of {', '.join(topics)} ({len(ends)} partitions)"
    ) in steps
    # One client since the time: most partitions had nothing since, and start at their end.
    assert any(expected[p] == end > 0 for p, end in ends.items())
    again = records_from(expected, ends)
    ledger = platform.topic_prefix + CREDITS_LEDGER.name
    assert again == {
        platform.topic_prefix + COMMERCE_PACKAGES.name: 1,
        platform.topic_prefix + BOOKING_SESSIONS.name: 2,
        ledger: 2,
    }
    assert_progress_counts(updates, outcome, sum(again.values()))
    # The ledger since the time is read twice: first by the pass that reads credits' own
    # history, then by the group, which finds it applied.
    assert await consumed_per_topic(platform) == again + Counter({ledger: again[ledger]})
    after = business_state(SERVICE, platform.database_urls[SERVICE])
    assert after == before, differences(before, after)


@pytest.mark.parametrize(
    ("topic", "from_a_time", "replayed"),
    [(COMMERCE_PACKAGES, False, 10), (BOOKING_SESSIONS, True, 4)],
    ids=["commerce.packages from the beginning", "booking.sessions from a time"],
)
async def test_a_replay_of_one_topic_moves_only_that_topic_and_consumes_only_it(
    platform: IsolatedPlatform, topic: Topic, from_a_time: bool, replayed: int
) -> None:
    name = platform.topic_prefix + topic.name
    await play(platform, range(1, 9))
    since = datetime.now(UTC)
    await play(platform, [9, 10])
    committed = await committed_offsets(platform.kafka_bootstrap, platform.topic_prefix + SERVICE)
    ends = await input_ends(platform, input_topic_names(SERVICE, platform.topic_prefix))
    if from_a_time:
        start = offsets_since(await records_of(platform, [name]), ends, since)
    else:
        start = dict.fromkeys(ends, 0)
    before = business_state(SERVICE, platform.database_urls[SERVICE])
    control, seen = watched(platform)
    updates: list[Progress] = []

    # Named as in the contract, without the copy's topic prefix.
    outcome = await recovery.replay(
        platform.target(SERVICE),
        control,
        updates.append,
        topic=topic.name,
        since=since if from_a_time else None,
        poll_interval=POLL_INTERVAL,
    )

    assert only(seen[0], name) == only(start, name)
    assert all_but(seen[0], name) == all_but(committed, name)
    assert records_from(only(start, name), only(ends, name)) == {name: replayed}
    assert_progress_counts(updates, outcome, replayed)
    assert await consumed_per_topic(platform) == {name: replayed}
    after = business_state(SERVICE, platform.database_urls[SERVICE])
    assert after == before, differences(before, after)


async def test_a_replay_from_a_time_never_skips_what_the_group_had_not_consumed(
    platform: IsolatedPlatform,
) -> None:
    topics = input_topic_names(SERVICE, platform.topic_prefix)
    await play(platform, range(1, 5))
    group = platform.topic_prefix + SERVICE
    committed = await committed_offsets(platform.kafka_bootstrap, group)
    await platform.control(SERVICE).stop()
    # Bought while credits was down: the group has not got to it yet.
    await platform.publish(delivered_sessions([5]))
    since = datetime.now(UTC)
    control, seen = watched(platform)

    outcome = await recovery.replay(
        platform.target(SERVICE), control, since=since, poll_interval=POLL_INTERVAL
    )

    ends = await input_ends(platform, topics)
    assert {p: seen[0].get(p, 0) for p in ends} == {p: committed.get(p, 0) for p in ends}
    # The purchase, the booking, its completion, and the two entries credits announced.
    assert outcome.records == 5
    async with platform.http() as http:
        balance = (await http.get(f"{platform.url(SERVICE)}/api/credits/5")).json()
    assert (balance["total"], balance["used"]) == (5, 1)
