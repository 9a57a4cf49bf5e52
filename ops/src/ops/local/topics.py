"""The contract's topics on the broker, created from `contracts.topics` with their settings.

The broker has automatic topic creation switched off, so this is the only way topics come
to exist: with the partitions and retention the contract gives, never the broker's defaults.
Existing topics are left alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError, for_code

from contracts.topics import ALL_TOPICS, Topic
from ops.local.errors import PlatformError
from servicekit.kafka import client_options

#: More copies than brokers is an error; three is the usual ceiling where there are more.
MAX_REPLICATION = 3


def new_topic(topic: Topic, replication_factor: int) -> NewTopic:
    return NewTopic(
        name=topic.name,
        num_partitions=topic.partitions,
        replication_factor=replication_factor,
        topic_configs=dict(topic.config),
    )


def creation_failures(topic_errors: Sequence[Sequence[Any]]) -> list[str]:
    """'name: reason' for each topic the broker refused; one that already exists is fine
    (another `ops up` may have created it a moment earlier)."""
    failures = []
    for entry in topic_errors:
        name, code = entry[0], entry[1]
        if code == 0 or code == TopicAlreadyExistsError.errno:
            continue
        message = entry[2] if len(entry) > 2 and entry[2] else for_code(code).__name__
        failures.append(f"{name}: {message}")
    return failures


async def create_topics(bootstrap: str, topics: Sequence[Topic] = ALL_TOPICS) -> list[str]:
    """Create the missing topics; returns the names of those created."""
    admin = AIOKafkaAdminClient(
        **client_options(), bootstrap_servers=bootstrap, request_timeout_ms=30_000
    )
    try:
        await admin.start()
        existing = set(await admin.list_topics())
        missing = [topic for topic in topics if topic.name not in existing]
        if missing:
            brokers = len((await admin.describe_cluster())["brokers"])
            replication = max(1, min(MAX_REPLICATION, brokers))
            response = await admin.create_topics([new_topic(t, replication) for t in missing])
            failures = creation_failures(response.topic_errors)
            if failures:
                raise PlatformError("creating Kafka topics failed: " + "; ".join(failures))
    except KafkaError as error:
        raise PlatformError(f"creating Kafka topics at {bootstrap} failed: {error!r}") from None
    finally:
        await admin.close()
    return [topic.name for topic in missing]


def outcome(created: int, total: int) -> str:
    if created:
        return f"Topics: created {created}, {total - created} already there"
    return f"Topics: all {total} already there"
