"""Consumer groups: where each has got to, and moving it back to the beginning for a replay."""

from __future__ import annotations

from collections.abc import Sequence

from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import TopicPartition


async def topic_partitions(bootstrap: str, topics: Sequence[str]) -> list[TopicPartition]:
    """Every partition of `topics`; a topic that does not exist has none."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        described = await admin.describe_topics(list(topics))
    finally:
        await admin.close()
    return [
        TopicPartition(topic["topic"], partition["partition"])
        for topic in described
        if topic["error_code"] == 0
        for partition in sorted(topic["partitions"], key=lambda p: p["partition"])
    ]


async def rewind_to_earliest(bootstrap: str, group: str, topics: Sequence[str]) -> int:
    """Commit the earliest offset of every partition of `topics` for `group`; returns how
    many partitions were rewound. The group must have no live members (stop its service
    first): Kafka refuses commits from outside a group that is consuming."""
    partitions = await topic_partitions(bootstrap, topics)
    if not partitions:
        return 0
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False
    )
    await consumer.start()
    try:
        consumer.assign(partitions)
        earliest = await consumer.beginning_offsets(partitions)
        await consumer.commit(dict(earliest))
    finally:
        await consumer.stop()
    return len(partitions)
