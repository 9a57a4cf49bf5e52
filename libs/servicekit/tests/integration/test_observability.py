"""Seeing inside a running service, through a real broker and database: its metrics after a
known workload, its JSON logs, and a trace carried from a consumed record to the events its
handler causes."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from httpx import ASGITransport, AsyncClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text

from contracts.envelope import record_headers
from contracts.topics import COMMERCE_PACKAGES
from servicekit.domain import Announced, RuleBroken
from servicekit.kafka import client_options
from servicekit.logs import JsonFormatter
from servicekit.outbox import Outbox
from servicekit.runtime import ServiceRuntime
from servicekit.tracing import TraceParent
from testkit.helpers import eventually, read_topic
from testkit.probe import ProbeBatch

from .conftest import RuntimeFactory, purchase, purchase_record, send

pytestmark = pytest.mark.infra

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
SPAN = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE}-{SPAN}-01"

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def scrape(runtime: ServiceRuntime) -> Samples:
    app = runtime.create_app(title="Probe")
    async with AsyncClient(transport=ASGITransport(app=app), base_url="http://probe") as client:
        response = await client.get("/metrics")
    assert response.status_code == 200
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def sample(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def lag_by_partition(samples: Samples, topic: str) -> dict[int, float]:
    return {
        int(dict(labels)["partition"]): value
        for (name, labels), value in samples.items()
        if name == "platform_consumer_lag_records" and dict(labels)["topic"] == topic
    }


async def applied(database_url: str, runtime: ServiceRuntime) -> set[str]:
    async with runtime.database.transaction() as db:
        return set((await db.scalars(text("select event_id from applied"))).all())


async def test_metrics_count_each_record_by_outcome_and_time_its_handler(
    make_runtime: RuntimeFactory, producer: AIOKafkaProducer, scratch_topic: str
) -> None:
    def refuses(batch: Any, event: Any) -> None:
        if event.payload.purchase_id == "refused":
            raise RuleBroken("no such package")

    runtime = make_runtime(refuses)
    await runtime.start()
    for n in range(3):
        await send(producer, scratch_topic, purchase_record(event_id=f"ok-{n}"))
    await send(producer, scratch_topic, purchase_record(event_id="ok-0"))
    await send(producer, scratch_topic, b"not json")
    await send(producer, scratch_topic, purchase_record(event_id="no", purchase_id="refused"))
    await send(producer, scratch_topic, purchase_record(event_id="last"))

    consumed = "platform_events_consumed_total"
    labels = {"topic": scratch_topic, "event_type": "PackagePurchased"}

    async def all_applied() -> bool:
        return sample(await scrape(runtime), consumed, **labels, outcome="applied") == 4

    await eventually(all_applied)
    samples = await scrape(runtime)
    assert sample(samples, consumed, **labels, outcome="duplicate") == 1
    assert sample(samples, consumed, **labels, outcome="dead-lettered") == 1
    unreadable = {"topic": scratch_topic, "event_type": "unknown", "outcome": "dead-lettered"}
    assert sample(samples, consumed, **unreadable) == 1
    dead = "platform_events_dead_lettered_total"
    assert sample(samples, dead, topic=scratch_topic, reason="not-json") == 1
    assert sample(samples, dead, topic=scratch_topic, reason="rejected") == 1
    # The four applied and the refused one ran their handler (the duplicate did not); a
    # batch applied again without the refused one runs some of them twice.
    timed = "platform_handler_duration_seconds_count"
    assert (sample(samples, timed, event_type="PackagePurchased") or 0) >= 5

    async def nothing_left_behind() -> bool:
        return lag_by_partition(await scrape(runtime), scratch_topic) == {0: 0, 1: 0, 2: 0}

    await eventually(nothing_left_behind)


async def test_consumer_lag_counts_the_records_waiting_behind_the_one_being_handled(
    make_runtime: RuntimeFactory,
    producer: AIOKafkaProducer,
    scratch_topic: str,
    database_url: str,
) -> None:
    entered, release = asyncio.Event(), asyncio.Event()

    async def slow(db: Any, event: Any) -> None:
        if event.id == "slow":
            entered.set()
            await release.wait()

    runtime = make_runtime(before_write=slow)
    await runtime.start()
    await send(producer, scratch_topic, purchase_record(event_id="slow"))
    await asyncio.wait_for(entered.wait(), timeout=20)
    for n in range(3):
        await send(producer, scratch_topic, purchase_record(event_id=f"behind-{n}"))

    async def lag_is(expected: float) -> bool:
        return lag_by_partition(await scrape(runtime), scratch_topic).get(0) == expected

    await eventually(lambda: lag_is(3))
    release.set()
    await eventually(lambda: lag_is(0))
    assert {"slow", "behind-2"} <= await applied(database_url, runtime)


@pytest.fixture
async def caused_topic(kafka_bootstrap: str, scratch_topic: str) -> AsyncIterator[str]:
    """Where the probe's outbox publishes: the contract topic behind the scratch prefix."""
    name = f"{scratch_topic}.{COMMERCE_PACKAGES.name}"
    admin = AIOKafkaAdminClient(**client_options(), bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, num_partitions=1, replication_factor=1)])
        yield name
        await admin.delete_topics([name])
    finally:
        await admin.close()


@pytest.fixture
def consumer_log() -> Iterator[io.StringIO]:
    output = io.StringIO()
    handler = logging.StreamHandler(output)
    handler.setFormatter(JsonFormatter(service="probe"))
    logger = logging.getLogger("servicekit.consumer")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield output
    logger.removeHandler(handler)
    logger.setLevel(level)


async def test_a_records_trace_reaches_the_logs_and_the_events_its_handler_causes(
    make_runtime: RuntimeFactory,
    producer: AIOKafkaProducer,
    scratch_topic: str,
    caused_topic: str,
    kafka_bootstrap: str,
    consumer_log: io.StringIO,
) -> None:
    outbox = Outbox(source="/probe", topic_prefix=scratch_topic + ".")

    def announce(batch: ProbeBatch, event: Any) -> None:
        caused = purchase(purchase_id=f"after-{event.id}")
        batch.announced.append(Announced(caused, event_id=f"after-{event.id}"))

    runtime = make_runtime(announce, outbox=outbox)
    await runtime.start()
    await producer.send_and_wait(
        scratch_topic,
        value=purchase_record(event_id="traced"),
        key=b"1",
        partition=0,
        headers=[
            *record_headers(),
            ("traceparent", TRACEPARENT.encode()),
            ("correlation-id", b"order-42"),
        ],
    )

    [caused] = await read_topic(kafka_bootstrap, caused_topic, until=lambda r: len(r) >= 1)
    headers = dict(caused.headers)
    parent = TraceParent.parse(headers["traceparent"].decode())
    assert parent is not None
    assert parent.trace_id == TRACE
    assert parent.span_id != SPAN
    assert headers["correlation-id"] == b"order-42"

    lines = [json.loads(line) for line in consumer_log.getvalue().splitlines()]
    [applied_line] = [
        line
        for line in lines
        if line.get("event_id") == "traced" and line["message"].endswith("applied PackagePurchased")
    ]
    assert applied_line["event_type"] == "PackagePurchased"
    assert applied_line["trace_id"] == TRACE
    assert applied_line["span_id"] == parent.span_id  # the consumer's span caused the event
    assert applied_line["correlation_id"] == "order-42"
    assert applied_line["service"] == "probe"

    published = {"topic": caused_topic, "event_type": "PackagePurchased"}

    async def relayed() -> bool:
        samples = await scrape(runtime)
        return (
            sample(samples, "platform_events_published_total", **published) == 1
            and sample(samples, "platform_outbox_backlog_rows") == 0
            and sample(samples, "platform_outbox_oldest_age_seconds") == 0
        )

    await eventually(relayed)


async def test_the_outbox_backlog_and_the_age_of_its_oldest_event_are_measured_when_scraped(
    make_runtime: RuntimeFactory, scratch_topic: str
) -> None:
    runtime = make_runtime()  # not started: no relay publishes what is written
    outbox = Outbox(source="/probe", topic_prefix=scratch_topic + ".")
    for n in range(2):
        async with runtime.database.transaction() as db:
            await outbox.add(db, purchase(purchase_id=f"waiting-{n}"))
    await asyncio.sleep(0.3)
    samples = await scrape(runtime)
    assert sample(samples, "platform_outbox_backlog_rows") == 2
    age = sample(samples, "platform_outbox_oldest_age_seconds")
    assert age is not None
    assert 0.3 <= age < 30
    assert lag_by_partition(samples, scratch_topic) == {}
