"""A service that reads its own history first: the records of its history topic, up to the
end they had at start-up, are applied before any record of its inputs; a record it cannot
apply is left to the group's pass and dead-lettered once; and a restart reads only what the
group has not committed yet."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer

from contracts.topics import Topic
from servicekit.history import read_history
from servicekit.runtime import ServiceRuntime
from testkit.helpers import (
    committed_offsets,
    end_offsets,
    eventually,
    read_topic,
    topic_with_dead_letters,
)

from .conftest import RuntimeFactory, purchase_record, send

pytestmark = pytest.mark.infra


@pytest.fixture
async def history_topic(kafka_bootstrap: str) -> AsyncIterator[str]:
    async with topic_with_dead_letters(kafka_bootstrap, partitions=2) as name:
        yield name


def runtime_reading_history_first(
    make_runtime: RuntimeFactory, history_topic: str, order: list[str]
) -> ServiceRuntime:
    """A probe service on the scratch topic that also reads `history_topic`, first; it
    notes the id of each event it applies in `order`."""

    def remember_order(batch: Any, event: Any) -> None:
        order.append(event.id)

    runtime = make_runtime(remember_order)
    history = Topic(name=history_topic, key="userId", event_types=("PackagePurchased",))
    runtime.subscribe(history)
    runtime.reads_history_first(history)
    return runtime


async def test_history_is_applied_before_any_input_and_poison_is_dead_lettered_once(
    make_runtime: RuntimeFactory,
    producer: AIOKafkaProducer,
    scratch_topic: str,
    history_topic: str,
    kafka_bootstrap: str,
) -> None:
    for n in range(3):
        await send(producer, scratch_topic, purchase_record(event_id=f"input-{n}"))
    for n in range(6):
        key = str(n % 2).encode()  # both partitions of the history topic
        await send(producer, history_topic, purchase_record(event_id=f"history-{n}"), key=key)
    await send(producer, history_topic, b"not json at all")
    order: list[str] = []
    runtime = runtime_reading_history_first(make_runtime, history_topic, order)
    await runtime.start()

    await eventually(lambda: len(order) == 9)
    assert sorted(order[:6]) == [f"history-{n}" for n in range(6)]
    assert sorted(order[6:]) == [f"input-{n}" for n in range(3)]
    dead = await read_topic(kafka_bootstrap, history_topic + ".dlq", until=lambda r: len(r) >= 1)
    assert [record.value for record in dead] == [b"not json at all"]
    # The group's own pass read the history again: nothing more to apply, nothing more dead.
    await send(producer, history_topic, purchase_record(event_id="history-later"))
    await eventually(lambda: "history-later" in order)
    assert len(order) == 10
    assert sum((await end_offsets(kafka_bootstrap, history_topic + ".dlq")).values()) == 1


async def test_a_restart_reads_only_the_history_the_group_has_not_committed(
    make_runtime: RuntimeFactory,
    producer: AIOKafkaProducer,
    history_topic: str,
    kafka_bootstrap: str,
) -> None:
    order: list[str] = []
    runtime = runtime_reading_history_first(make_runtime, history_topic, order)
    await runtime.start()
    for n in range(4):
        await send(producer, history_topic, purchase_record(event_id=f"h-{n}"))
    await eventually(lambda: len(order) == 4)
    group = runtime.settings.consumer_group
    await eventually(lambda: _committed_everything(kafka_bootstrap, group, history_topic))
    await runtime.stop()

    assert (
        await read_history(
            runtime.consumer,
            bootstrap_servers=kafka_bootstrap,
            group=group,
            topics=[history_topic],
            security=runtime.settings.kafka_security,
        )
        == 0
    )
    await send(producer, history_topic, purchase_record(event_id="h-4"))
    assert (
        await read_history(
            runtime.consumer,
            bootstrap_servers=kafka_bootstrap,
            group=group,
            topics=[history_topic],
            security=runtime.settings.kafka_security,
        )
        == 1
    )


def test_a_history_topic_must_be_subscribed(make_runtime: RuntimeFactory) -> None:
    runtime = make_runtime()
    with pytest.raises(ValueError, match="must be subscribed"):
        runtime.reads_history_first(Topic(name="elsewhere", key="userId", event_types=()))


async def _committed_everything(bootstrap: str, group: str, topic: str) -> bool:
    committed = await committed_offsets(bootstrap, group)
    ends = await end_offsets(bootstrap, topic)
    return all(committed.get(partition, 0) >= end for partition, end in ends.items())
