"""Batches: many records applied in one transaction, each at most once, with what cannot be
applied taken out; and, through the broker, a batch delivered again after a failure is
applied once across every partition it spans."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.structs import TopicPartition

from servicekit.consumer import IdempotentConsumer, Outcome, RetryPolicy
from servicekit.db import Database
from servicekit.dead_letters import ConsumedRecord
from servicekit.domain import RuleBroken
from testkit.helpers import RecordingDeadLetters, committed_offsets, end_offsets, eventually
from testkit.probe import BeforeWrite, ProbeBatch, ProbeStore, probe_handlers

from .conftest import RuntimeFactory, purchase_record, send
from .test_delivery import applied_event_ids

pytestmark = pytest.mark.infra


def record(event_id: str, offset: int, partition: int = 0) -> ConsumedRecord:
    value = purchase_record(event_id=event_id)
    return ConsumedRecord("t", partition, offset, key=b"1", value=value, headers=[])


@pytest.fixture
async def database(database_url: str) -> Any:
    database = Database(database_url)
    yield database
    await database.dispose()


def recording_consumer(
    database: Database,
    dead_letters: RecordingDeadLetters,
    refuse: set[str],
    fail: dict[str, int],
    before_write: BeforeWrite | None = None,
) -> IdempotentConsumer:
    """Applies purchases into `applied`; refuses the ids in `refuse`, and raises for each id
    in `fail` as many times as it says."""
    retry = RetryPolicy(max_attempts=3, first_backoff=0.01)
    consumer = IdempotentConsumer("batch-test", database, dead_letters, retry=retry)

    def apply(batch: ProbeBatch, event: Any) -> None:
        if event.id in refuse:
            raise RuleBroken(f"{event.id} is refused")
        if fail.get(event.id, 0) > 0:
            fail[event.id] -= 1
            raise ZeroDivisionError("a bug")

    consumer.handle(ProbeStore(before_write), probe_handlers(apply))
    return consumer


async def test_a_batch_applies_each_event_once_and_takes_out_what_breaks_a_rule(
    database: Database, database_url: str
) -> None:
    dead_letters = RecordingDeadLetters()
    consumer = recording_consumer(database, dead_letters, refuse={"b"}, fail={})
    batch = [record("a", 0), record("b", 1), record("a", 2), record("c", 3), record("x", 4)]
    batch[4] = ConsumedRecord(topic="t", partition=0, offset=4, key=None, value=b"{", headers=[])

    outcome = await consumer.process_batch(batch)

    assert outcome.retry_after is None
    applied, dead, duplicate = Outcome.APPLIED, Outcome.DEAD_LETTERED, Outcome.DUPLICATE
    assert outcome.outcomes == [applied, dead, duplicate, applied, dead]
    # The refused event's own insert was rolled back with it, and it is not remembered.
    assert await applied_event_ids(database_url) == ["a", "c"]
    assert dead_letters.reasons[0] == "b is refused"
    assert dead_letters.reasons[1].startswith("not JSON")
    again = await consumer.process_batch([record("b", 5), record("c", 6)])
    assert again.outcomes == [Outcome.DEAD_LETTERED, Outcome.DUPLICATE]


async def test_a_failing_handler_retries_the_whole_batch_then_is_taken_out(
    database: Database, database_url: str
) -> None:
    dead_letters = RecordingDeadLetters()
    consumer = recording_consumer(database, dead_letters, refuse=set(), fail={"b": 99})
    batch = [record("a", 0), record("b", 1, partition=1), record("c", 2)]

    for _ in range(2):
        outcome = await consumer.process_batch(batch)
        assert outcome.outcomes == [Outcome.RETRY] * 3
        assert outcome.retry_after is not None
        assert await applied_event_ids(database_url) == []
    outcome = await consumer.process_batch(batch)  # the third attempt gives up on it

    assert outcome.outcomes == [Outcome.APPLIED, Outcome.DEAD_LETTERED, Outcome.APPLIED]
    assert await applied_event_ids(database_url) == ["a", "c"]
    assert dead_letters.reasons == ["failed 3 times: ZeroDivisionError: a bug"]


async def test_a_batch_spanning_partitions_is_delivered_again_and_applied_once(
    make_runtime: RuntimeFactory,
    producer: AIOKafkaProducer,
    scratch_topic: str,
    database_url: str,
    kafka_bootstrap: str,
) -> None:
    """FastStream's nack of a batch rewinds every partition in it (0.7.8): the records of
    the other partitions come again with the failing one, and are applied once.

    Which partitions the first polls hand over depends on when each partition's position is
    known, so the handler holds out (fails) every batch that does not hold all three; the
    record `p1-3` then fails in three batches that do. What came with `p1-3` is counted from
    its batch, not from the handler's calls: a batch in which `p1-3` comes first fails before
    the handler sees any other record."""
    with_the_failing_one: Counter[str] = Counter()
    failed_spanning = 0

    def flaky(batch: ProbeBatch, event: Any) -> None:
        nonlocal failed_spanning
        if event.id in ids and {e.id[:2] for e in batch.events} != {"p0", "p1", "p2"}:
            raise ZeroDivisionError("not a batch spanning every partition yet")
        if event.id == "p1-3":
            with_the_failing_one.update(e.id for e in batch.events)
        if event.id == "p1-3" and failed_spanning < 3:
            failed_spanning += 1
            raise ZeroDivisionError("the first three times")

    ids = [f"p{partition}-{n}" for n in range(5) for partition in range(3)]
    for event_id in ids:
        partition = int(event_id[1])
        await producer.send_and_wait(
            scratch_topic, value=purchase_record(event_id=event_id), key=b"k", partition=partition
        )
    runtime = make_runtime(flaky)
    # Holding out partial batches counts as attempts: enough of them never to give up here.
    runtime.consumer.retry = RetryPolicy(max_attempts=1000, first_backoff=0.01, max_backoff=0.05)
    await runtime.start()

    await eventually(lambda: _all_applied(database_url, ids))
    assert sorted(await applied_event_ids(database_url)) == sorted(ids)
    assert failed_spanning == 3
    # `batch.events` holds only records not yet applied: one that came twice was not applied.
    assert any(with_the_failing_one[i] >= 2 for i in ids if not i.startswith("p1")), (
        "no record of another partition came again: the batch did not span partitions"
    )
    group = runtime.settings.consumer_group
    ends = await end_offsets(kafka_bootstrap, scratch_topic)

    async def committed_to_the_end() -> bool:
        committed = await committed_offsets(kafka_bootstrap, group)
        return all(committed.get(TopicPartition(scratch_topic, p), 0) == 5 for p in range(3))

    await eventually(committed_to_the_end)
    assert sum(ends.values()) == 15
    await send(producer, scratch_topic, purchase_record(event_id="after"))
    await eventually(lambda: _all_applied(database_url, ["after"]))


async def _all_applied(database_url: str, ids: list[str]) -> bool:
    return set(ids) <= set(await applied_event_ids(database_url))


async def test_a_batch_that_fails_as_a_whole_is_applied_one_record_at_a_time(
    database: Database, database_url: str
) -> None:
    """A failure while a batch is loaded or written names no record: the records are then
    applied one per transaction, and only the one that fails alone is set aside."""

    async def write_fails_with_b(db: Any, event: Any) -> None:
        if event.id == "b":
            raise ValueError("cannot write what b asked for")

    dead_letters = RecordingDeadLetters()
    consumer = recording_consumer(database, dead_letters, set(), {}, write_fails_with_b)
    batch = [record("a", 0), record("b", 1), record("c", 2)]

    for _ in range(2):  # b fails alone, twice: the whole batch comes again each time
        outcome = await consumer.process_batch(batch)
        assert outcome.outcomes == [Outcome.RETRY] * 3
    assert await applied_event_ids(database_url) == ["a"]
    outcome = await consumer.process_batch(batch)

    assert outcome.outcomes == [Outcome.DUPLICATE, Outcome.DEAD_LETTERED, Outcome.APPLIED]
    assert await applied_event_ids(database_url) == ["a", "c"]
    assert dead_letters.reasons == ["failed 3 times: ValueError: cannot write what b asked for"]
