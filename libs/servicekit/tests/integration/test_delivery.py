"""Delivery through a real broker and a real database: each event applied exactly once,
poison dead-lettered, nothing committed that was not applied."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.structs import TopicPartition
from sqlalchemy import text

from servicekit.db import Database
from testkit.helpers import committed_offsets, end_offsets, eventually, read_topic

from .conftest import RuntimeFactory, purchase_record, send

pytestmark = pytest.mark.infra


async def applied_event_ids(database_url: str) -> list[str]:
    database = Database(database_url)
    try:
        async with database.transaction() as db:
            rows = await db.execute(text("select event_id from applied order by event_id"))
            return [row[0] for row in rows]
    finally:
        await database.dispose()


async def test_a_contract_event_published_through_the_broker_is_received_and_applied(
    make_runtime: RuntimeFactory,
    producer: AIOKafkaProducer,
    scratch_topic: str,
    database_url: str,
) -> None:
    runtime = make_runtime()
    await runtime.start()
    await send(producer, scratch_topic, purchase_record(event_id="smoke-1"))
    await eventually(lambda: _has(database_url, ["smoke-1"]))


async def test_the_same_event_delivered_many_times_is_applied_once(
    make_runtime: RuntimeFactory,
    producer: AIOKafkaProducer,
    scratch_topic: str,
    database_url: str,
) -> None:
    runtime = make_runtime()
    await runtime.start()
    value = purchase_record(event_id="dup-1")
    for _ in range(5):
        await send(producer, scratch_topic, value)
    await send(producer, scratch_topic, purchase_record(event_id="dup-2"))
    # dup-2 comes after every copy of dup-1 in the partition: once it is applied, all are.
    await eventually(lambda: _has(database_url, ["dup-1", "dup-2"]))
    assert await applied_event_ids(database_url) == ["dup-1", "dup-2"]


async def test_poison_records_are_dead_lettered_and_the_partition_keeps_flowing(
    make_runtime: RuntimeFactory,
    producer: AIOKafkaProducer,
    scratch_topic: str,
    database_url: str,
    kafka_bootstrap: str,
) -> None:
    runtime = make_runtime()
    await runtime.start()
    poison = [
        b"\xff not json",
        b'{"hello": "world"}',
        purchase_record(event_id="bad-payload").replace(b'"sessions":10', b'"sessions":"ten"'),
    ]
    for value in poison:
        await send(producer, scratch_topic, value)
    await send(producer, scratch_topic, purchase_record(event_id="after-poison"))

    await eventually(lambda: _has(database_url, ["after-poison"]))
    dead = await read_topic(kafka_bootstrap, scratch_topic + ".dlq", until=lambda r: len(r) >= 3)
    assert [record.value for record in dead] == poison
    reasons = [dict(record.headers)["dlq-reason"].decode() for record in dead]
    assert reasons[0].startswith("not JSON")
    assert reasons[1].startswith("not a CloudEvent")
    assert reasons[2].startswith("invalid PackagePurchased payload: sessions")
    first = dict(dead[0].headers)
    assert first["dlq-topic"] == scratch_topic.encode()
    assert first["dlq-partition"] == b"0"
    assert first["dlq-consumer"] == runtime.settings.consumer_group.encode()
    assert first["content-type"] == b"application/cloudevents+json"
    offsets = [int(dict(record.headers)["dlq-offset"]) for record in dead]
    assert offsets == sorted(offsets)


async def test_a_transient_failure_is_retried_not_dead_lettered(
    make_runtime: RuntimeFactory,
    producer: AIOKafkaProducer,
    scratch_topic: str,
    database_url: str,
    kafka_bootstrap: str,
) -> None:
    failures = 0

    def database_blips(batch: Any, event: Any) -> None:
        nonlocal failures
        if failures < 8:  # more than max_attempts: transient failures never dead-letter
            failures += 1
            raise ConnectionRefusedError("database went away")

    runtime = make_runtime(database_blips)
    runtime.consumer.retry = type(runtime.consumer.retry)(first_backoff=0.01, max_backoff=0.05)
    await runtime.start()
    await send(producer, scratch_topic, purchase_record(event_id="blip"))
    await eventually(lambda: _has(database_url, ["blip"]))
    assert failures == 8
    group = runtime.settings.consumer_group
    committed = await committed_offsets(kafka_bootstrap, group)
    assert committed[TopicPartition(scratch_topic, 0)] == 1
    assert sum((await end_offsets(kafka_bootstrap, scratch_topic + ".dlq")).values()) == 0


async def test_a_record_that_always_fails_is_dead_lettered_after_its_attempts(
    make_runtime: RuntimeFactory,
    producer: AIOKafkaProducer,
    scratch_topic: str,
    database_url: str,
    kafka_bootstrap: str,
) -> None:
    def bug(batch: Any, event: Any) -> None:
        if event.id == "cursed":
            raise ZeroDivisionError("division by zero")

    runtime = make_runtime(bug)
    runtime.consumer.retry = type(runtime.consumer.retry)(first_backoff=0.01, max_backoff=0.05)
    await runtime.start()
    await send(producer, scratch_topic, purchase_record(event_id="cursed"))
    await send(producer, scratch_topic, purchase_record(event_id="blessed"))
    await eventually(lambda: _has(database_url, ["blessed"]))
    dead = await read_topic(kafka_bootstrap, scratch_topic + ".dlq", until=lambda r: len(r) >= 1)
    assert (
        dict(dead[0].headers)["dlq-reason"]
        == b"failed 5 times: ZeroDivisionError: division by zero"
    )
    assert await applied_event_ids(database_url) == ["blessed"]


async def test_a_handler_cancelled_at_shutdown_is_not_committed_and_runs_again(
    make_runtime: RuntimeFactory,
    producer: AIOKafkaProducer,
    scratch_topic: str,
    database_url: str,
    kafka_bootstrap: str,
) -> None:
    entered = asyncio.Event()

    async def slow(db: Any, event: Any) -> None:
        entered.set()
        await asyncio.sleep(60)

    first = make_runtime(before_write=slow, graceful_timeout=0.5)
    await first.start()
    await send(producer, scratch_topic, purchase_record(event_id="interrupted"))
    await asyncio.wait_for(entered.wait(), timeout=20)
    await first.stop()
    group = first.settings.consumer_group
    assert TopicPartition(scratch_topic, 0) not in await committed_offsets(kafka_bootstrap, group)
    assert await applied_event_ids(database_url) == []

    second = make_runtime()
    await second.start()
    await eventually(lambda: _has(database_url, ["interrupted"]))


async def _has(database_url: str, event_ids: list[str]) -> bool:
    return set(event_ids) <= set(await applied_event_ids(database_url))
