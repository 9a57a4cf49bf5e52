"""The analytics service on the real broker: it follows the workouts and ledger topics,
publishes usage to its own topic, and a fresh copy rebuilt from the topics agrees; the
ledger's forfeits and expiries reach the usage and its chart, and its events without a
balance pass without a change or a dead letter."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from httpx import ASGITransport, AsyncClient

from analytics.main import INPUT_TOPICS, create_app
from analytics.settings import Settings
from contracts.envelope import build_event, encode, parse_event, partition_key, record_headers
from contracts.envelope import topic_of as contract_topic_of
from contracts.events import SessionUsageUpdated
from contracts.topics import CREDITS_LEDGER, SESSION_USAGE, WORKOUT_SESSIONS
from ops.local.topics import create_topics
from servicekit.kafka import client_options
from servicekit.runtime import ServiceRuntime
from testkit.events import CLIENT
from testkit.helpers import Record, committed_offsets, end_offsets, eventually, read_topic

from .stories import (
    CREDIT_POLICIES_CREDIT_CHART,
    CREDIT_POLICIES_USAGE,
    EXAMPLE_1_USAGE,
    Step,
    credit_policies,
    example_1,
)

pytestmark = pytest.mark.infra

StartService = Callable[[], Awaitable[tuple[ServiceRuntime, AsyncClient]]]


@pytest.fixture
async def topics(kafka_bootstrap: str, topic_prefix: str) -> AsyncIterator[None]:
    ours = [
        each.with_prefix(topic_prefix)
        # Its inputs as its principal names them, and its output.
        for topic in (*INPUT_TOPICS, SESSION_USAGE)
        for each in (topic, topic.dead_letter)
    ]
    await create_topics(kafka_bootstrap, ours)
    yield
    admin = AIOKafkaAdminClient(**client_options(), bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        await admin.delete_topics([topic.name for topic in ours])
    finally:
        await admin.close()


@pytest.fixture
async def start_service(
    topics: None,
    service_database: Callable[[str], str],
    kafka_bootstrap: str,
    topic_prefix: str,
    staff_headers: dict[str, str],
) -> AsyncIterator[StartService]:
    """Starts copies of the service, each with a database and a consumer group of its own,
    as an operator rebuilding it side by side would."""
    started: list[tuple[ServiceRuntime, AsyncClient]] = []

    async def start() -> tuple[ServiceRuntime, AsyncClient]:
        settings = Settings(
            database_url=service_database("analytics"),
            kafka_bootstrap_servers=kafka_bootstrap,
            kafka_topic_prefix=topic_prefix,
            consumer_group=f"{topic_prefix}analytics-{uuid.uuid4().hex[:6]}",
        )
        app = create_app(settings)
        runtime: ServiceRuntime = app.state.runtime
        await runtime.start()
        api = AsyncClient(
            transport=ASGITransport(app=app), base_url="http://analytics", headers=staff_headers
        )
        started.append((runtime, api))
        return runtime, api

    yield start
    for runtime, api in started:
        await api.aclose()
        await runtime.stop()


async def publish(bootstrap: str, prefix: str, steps: list[Step]) -> None:
    """As the workouts and credits services publish: keyed by client, in CloudEvents."""
    producer = AIOKafkaProducer(
        **client_options(), bootstrap_servers=bootstrap, acks="all", enable_idempotence=True
    )
    await producer.start()
    try:
        for event_id, time, payload in steps:
            # As their producers send them: the ledger's events only ever come from credits.
            source = contract_topic_of(payload).sole_source or "/tests"
            event = build_event(payload, source=source, event_id=event_id, time=time)
            await producer.send_and_wait(
                prefix + contract_topic_of(payload).name,
                value=encode(event),
                key=partition_key(payload),
                headers=record_headers(),
            )
    finally:
        await producer.stop()


async def settled(runtime: ServiceRuntime, api: AsyncClient, expected: dict[str, Any]) -> None:
    """Wait until the service serves `expected` and has published every announcement."""

    async def done() -> bool:
        body = (await api.get(f"/api/analytics/{CLIENT}/session-usage")).json()
        return bool(body == expected and await runtime.relay.backlog() == 0)

    await eventually(done, within=60)


async def usage_records(
    bootstrap: str, topic: str, start: dict[Any, int] | None = None
) -> list[Record]:
    ends = await end_offsets(bootstrap, topic)
    return await read_topic(
        bootstrap,
        topic,
        start=start,
        until=lambda records: (
            len(records)
            >= sum(end - (start or {}).get(partition, 0) for partition, end in ends.items())
        ),
    )


async def test_usage_follows_the_topics_and_is_published_keyed_by_client(
    start_service: StartService, kafka_bootstrap: str, topic_prefix: str
) -> None:
    runtime, api = await start_service()
    workouts, ledger = example_1()
    await publish(kafka_bootstrap, topic_prefix, sorted(workouts + ledger, key=lambda s: s[1]))
    await settled(runtime, api, EXAMPLE_1_USAGE)

    records = await usage_records(kafka_bootstrap, topic_prefix + SESSION_USAGE.name)
    assert records
    assert {record.key for record in records} == {str(CLIENT).encode()}
    assert all(
        dict(record.headers)["content-type"] == b"application/cloudevents+json"
        for record in records
    )
    latest = parse_event(records[-1].value)
    assert latest.type == "SessionUsageUpdated"
    assert latest.envelope.source == "/swanstudios/analytics"
    assert latest.payload.to_json_dict() == {
        "userId": CLIENT,
        **EXAMPLE_1_USAGE,
        "asOf": "2026-01-17T09:00:00Z",
    }


async def test_a_copy_rebuilt_from_the_topics_serves_and_announces_the_same_usage(
    start_service: StartService, kafka_bootstrap: str, topic_prefix: str
) -> None:
    workouts, ledger = example_1()
    # The two topics published one after the other: the copy reads them in its own order.
    await publish(kafka_bootstrap, topic_prefix, ledger + workouts)
    original, original_api = await start_service()
    await settled(original, original_api, EXAMPLE_1_USAGE)
    usage_topic = topic_prefix + SESSION_USAGE.name
    before = await usage_records(kafka_bootstrap, usage_topic)
    rebuilt_from = await end_offsets(kafka_bootstrap, usage_topic)

    rebuilt, rebuilt_api = await start_service()
    await settled(rebuilt, rebuilt_api, EXAMPLE_1_USAGE)
    after = await usage_records(kafka_bootstrap, usage_topic, start=rebuilt_from)

    assert after, "the rebuilt copy announces the usage it rebuilt"
    last_before, last_after = parse_event(before[-1].value), parse_event(after[-1].value)
    assert isinstance(last_after.payload, SessionUsageUpdated)
    assert last_after.payload == last_before.payload
    assert last_after.id != last_before.id


async def test_forfeits_and_expiries_reach_the_usage_and_the_chart_and_no_balance_no_change(
    start_service: StartService, kafka_bootstrap: str, topic_prefix: str
) -> None:
    """The ledger's SessionCreditForfeited and CreditsExpired set held, expired and available;
    SoloWorkoutCounted and PackageExpiringSoon (one of them the ledger's last record) are
    consumed, change nothing and reach no dead-letter topic."""
    runtime, api = await start_service()
    workouts, ledger = credit_policies()
    await publish(kafka_bootstrap, topic_prefix, sorted(workouts + ledger, key=lambda s: s[1]))
    await settled(runtime, api, CREDIT_POLICIES_USAGE)
    ledger_topic = topic_prefix + CREDITS_LEDGER.name
    ledger_end = await end_offsets(kafka_bootstrap, ledger_topic)

    async def ledger_consumed() -> bool:
        group = runtime.settings.consumer_group
        committed = await committed_offsets(kafka_bootstrap, group)
        return all(committed.get(partition, 0) >= end for partition, end in ledger_end.items())

    await eventually(ledger_consumed, within=60)
    assert (await api.get(f"/api/analytics/{CLIENT}/session-usage")).json() == (
        CREDIT_POLICIES_USAGE
    )
    chart = (await api.get(f"/api/analytics/{CLIENT}/session-usage/chart")).text
    assert chart.splitlines()[7:] == CREDIT_POLICIES_CREDIT_CHART
    for topic in (CREDITS_LEDGER, WORKOUT_SESSIONS):
        dead = await end_offsets(kafka_bootstrap, topic_prefix + topic.dead_letter.name)
        assert sum(dead.values()) == 0, topic.name
    records = await usage_records(kafka_bootstrap, topic_prefix + SESSION_USAGE.name)
    assert parse_event(records[-1].value).payload.to_json_dict() == {
        "userId": CLIENT,
        **CREDIT_POLICIES_USAGE,
        "asOf": "2026-01-14T09:00:00Z",  # the last solo workout's, not the ledger's after it
    }
