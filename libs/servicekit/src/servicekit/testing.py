"""Helpers for tests that run against real Kafka and PostgreSQL: waiting for a condition,
reading topics without a consumer group, and looking at a group's committed offsets."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeAlias

from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import TopicPartition

#: An aiokafka ConsumerRecord; aiokafka ships no type information, so it is Any to mypy.
Record: TypeAlias = Any


async def eventually(check: Callable[[], Awaitable[bool]], *, within: float = 20.0) -> None:
    """Wait until `check()` holds; fail with TimeoutError after `within` seconds."""
    async with asyncio.timeout(within):
        while not await check():  # noqa: ASYNC110 - polls a server, nothing to await
            await asyncio.sleep(0.05)


async def _partitions(consumer: AIOKafkaConsumer, topic: str) -> list[TopicPartition]:
    partitions = consumer.partitions_for_topic(topic)
    if not partitions:
        await consumer._client.force_metadata_update()
        partitions = consumer.partitions_for_topic(topic)
    return [TopicPartition(topic, p) for p in sorted(partitions or ())]


async def end_offsets(bootstrap: str, topic: str) -> dict[TopicPartition, int]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        return dict(await consumer.end_offsets(await _partitions(consumer, topic)))
    finally:
        await consumer.stop()


async def read_topic(
    bootstrap: str,
    topic: str,
    *,
    until: Callable[[list[Record]], bool],
    start: dict[TopicPartition, int] | None = None,
    within: float = 20.0,
) -> list[Record]:
    """Read `topic` from `start` (default: the beginning) until `until(records)` holds."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        partitions = await _partitions(consumer, topic)
        consumer.assign(partitions)
        for partition in partitions:
            consumer.seek(partition, (start or {}).get(partition, 0))
        records: list[Record] = []
        async with asyncio.timeout(within):
            while not until(records):
                for batch in (await consumer.getmany(timeout_ms=100)).values():
                    records.extend(batch)
        return records
    finally:
        await consumer.stop()


async def committed_offsets(bootstrap: str, group: str) -> dict[TopicPartition, int]:
    """The offsets `group` has committed (partitions it never committed are absent)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group)
    finally:
        await admin.close()
    return {tp: meta.offset for tp, meta in offsets.items() if meta.offset >= 0}
