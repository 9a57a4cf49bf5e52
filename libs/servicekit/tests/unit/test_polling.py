"""How a runtime's subscriber polls Kafka: records are handed over as they arrive, never
after a sleep that follows an empty poll."""

from __future__ import annotations

from typing import Any, ClassVar

import anyio
import pytest
from aiokafka import ConsumerRecord, TopicPartition

from contracts.services import CREDITS, Service
from contracts.topics import COMMERCE_PACKAGES
from servicekit.runtime import IDLE_POLL_MS, ServiceRuntime
from servicekit.settings import ServiceSettings, settings_config
from testkit.probe import ProbeStore, probe_handlers


class ProbeSettings(ServiceSettings):
    model_config = settings_config(CREDITS)
    service: ClassVar[Service] = CREDITS


class RecordingConsumer:
    """Stands in for aiokafka's consumer: answers each poll with the next of `answers`."""

    def __init__(self, *answers: dict[TopicPartition, list[Any]]) -> None:
        self.answers = list(answers)
        self.polls: list[dict[str, Any]] = []

    async def getmany(self, *, timeout_ms: int, max_records: int) -> dict[TopicPartition, Any]:
        self.polls.append({"timeout_ms": timeout_ms, "max_records": max_records})
        return self.answers.pop(0)


def record(partition: int, offset: int) -> ConsumerRecord[bytes, bytes]:
    return ConsumerRecord(
        topic="p.commerce.packages",
        partition=partition,
        offset=offset,
        timestamp=0,
        timestamp_type=0,
        key=b"k",
        value=b"{}",
        checksum=None,
        serialized_key_size=1,
        serialized_value_size=2,
        headers=(),
    )


@pytest.fixture
def subscriber(monkeypatch: pytest.MonkeyPatch) -> Any:
    async def no_sleeping(seconds: float) -> None:
        raise AssertionError(f"the poll slept {seconds}s")

    monkeypatch.setattr(anyio, "sleep", no_sleeping)
    runtime = ServiceRuntime(
        ProbeSettings(
            database_url="postgresql+psycopg://nobody@127.0.0.1:1/none",
            kafka_bootstrap_servers="127.0.0.1:1",
            kafka_topic_prefix="p.",
            consumer_batch_size=321,
        )
    )
    runtime.consumer.handle(ProbeStore(), probe_handlers())
    runtime.subscribe(COMMERCE_PACKAGES)
    [subscribed] = runtime._subscribers
    return subscribed


async def test_an_empty_poll_returns_at_once_without_sleeping(subscriber: Any) -> None:
    consumer = RecordingConsumer({})

    assert await subscriber.get_msg(consumer) == ()
    # The wait for records is aiokafka's, which returns on the first to arrive.
    assert consumer.polls == [{"timeout_ms": IDLE_POLL_MS, "max_records": 321}]


async def test_a_poll_hands_over_every_partitions_records_in_order(subscriber: Any) -> None:
    first, second, third = record(0, 7), record(0, 8), record(1, 3)
    consumer = RecordingConsumer(
        {TopicPartition("p.commerce.packages", 0): [first, second]},
        {TopicPartition("p.commerce.packages", 1): [third]},
    )

    assert await subscriber.get_msg(consumer) == (first, second)
    assert await subscriber.get_msg(consumer) == (third,)
