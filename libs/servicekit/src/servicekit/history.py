"""Reading a service's own history before anything else.

A service that announces facts it derives from several input topics (credits: a deduction
caused by a workout or by a session's completion, with the balance it left) cannot derive
them again from those topics alone: a rebuild interleaves the topics in another order than
live, and would announce the same fact, under the same id, with other content. So such a
service reads the topic of its own announcements first, up to its end at start-up, and
applies what it finds as the facts they are; only then does it consume its inputs, which
find those facts already recorded.

The pass reads from the consumer group's committed offsets (from the beginning after a
rewind) without joining the group or committing: the group's own pass reads the same
records again afterwards and finds them already applied. Records it cannot apply are left
to that pass, so that they are dead-lettered once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from aiokafka import AIOKafkaConsumer
from aiokafka.structs import TopicPartition

from servicekit.consumer import IdempotentConsumer
from servicekit.dead_letters import ConsumedRecord
from servicekit.kafka import KafkaSecurity
from servicekit.settings import BATCH_SIZE

log = logging.getLogger(__name__)


async def read_history(
    consumer: IdempotentConsumer,
    *,
    bootstrap_servers: str,
    group: str,
    topics: Sequence[str],
    security: KafkaSecurity,
    batch_size: int = BATCH_SIZE,
) -> int:
    """Apply every record of `topics` between the group's committed offsets and the ends the
    topics have now. Returns how many records were read."""
    client = AIOKafkaConsumer(
        **security.aiokafka_options(),
        bootstrap_servers=bootstrap_servers,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await client.start()
    try:
        partitions = await _partitions_of(client, topics)
        client.assign(partitions)
        ends = await client.end_offsets(partitions)
        for partition in partitions:
            committed = await client.committed(partition)
            if committed is None:
                await client.seek_to_beginning(partition)
            else:
                client.seek(partition, committed)
        unread = {p for p in partitions if await client.position(p) < ends[p]}
        read = 0
        while unread:
            fetched = await client.getmany(*unread, timeout_ms=500, max_records=batch_size)
            batch = [
                ConsumedRecord.of(record)
                for partition, records in fetched.items()
                for record in records
                if record.offset < ends[partition]
            ]
            await _apply(consumer, batch)
            read += len(batch)
            for partition in list(unread):
                if await client.position(partition) >= ends[partition]:
                    unread.discard(partition)
        log.info("%s: read %d records of its own history first", group, read)
        return read
    finally:
        await client.stop()


async def _apply(consumer: IdempotentConsumer, batch: list[ConsumedRecord]) -> None:
    while batch:
        outcome = await consumer.process_batch(batch, dead_letter=False)
        if outcome.retry_after is None:
            return
        await asyncio.sleep(outcome.retry_after)


async def _partitions_of(client: AIOKafkaConsumer, topics: Sequence[str]) -> list[TopicPartition]:
    # The consumer's own metadata covers subscribed topics only; this one subscribes to none.
    cluster = await client._client.fetch_all_metadata()
    missing = [topic for topic in topics if not cluster.partitions_for_topic(topic)]
    if missing:
        # Topics are created by the platform's setup, before any service starts.
        raise RuntimeError(f"history topics missing on the broker: {', '.join(missing)}")
    return [
        TopicPartition(topic, partition)
        for topic in topics
        for partition in sorted(cluster.partitions_for_topic(topic))
    ]
