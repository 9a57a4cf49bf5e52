"""The consumer's decisions that need no database: what is dead-lettered, what is retried."""

from __future__ import annotations

from typing import Any

import pytest

from servicekit.consumer import IdempotentConsumer, Outcome, RetryPolicy
from servicekit.db import Database
from servicekit.dead_letters import ConsumedRecord
from testkit.helpers import RecordingDeadLetters
from testkit.probe import ProbeStore, probe_handlers


def consumer(dead_letters: RecordingDeadLetters) -> IdempotentConsumer:
    # The URL is never connected to: records rejected before the transaction need no database.
    database = Database("postgresql+psycopg://nobody@127.0.0.1:1/none")
    return IdempotentConsumer(name="test", database=database, dead_letters=dead_letters)


def never_reached(batch: Any, event: Any) -> None:  # pragma: no cover - not reached
    raise AssertionError("an invalid payload must not reach its handler")


def record(value: bytes, offset: int = 0) -> ConsumedRecord:
    return ConsumedRecord(topic="t", partition=0, offset=offset, key=b"1", value=value, headers=[])


@pytest.mark.parametrize(
    ("value", "reason_starts"),
    [
        (b"\x00\x01 not json", "not JSON"),
        (b'"a string"', "not a CloudEvent"),
        (b'{"specversion": "1.0"}', "not a CloudEvent"),
    ],
)
async def test_records_that_are_not_cloudevents_are_dead_lettered(
    value: bytes, reason_starts: str
) -> None:
    dead_letters = RecordingDeadLetters()
    assert await consumer(dead_letters).process(record(value)) is Outcome.DEAD_LETTERED
    assert dead_letters.sent[0][1].startswith(reason_starts)


async def test_event_types_without_a_handler_are_ignored() -> None:
    dead_letters = RecordingDeadLetters()
    value = b'{"specversion":"1.0","id":"1","source":"/s","type":"SomethingElse","data":{}}'
    assert await consumer(dead_letters).process(record(value)) is Outcome.IGNORED
    assert dead_letters.sent == []


async def test_schema_invalid_payload_of_a_handled_type_is_dead_lettered() -> None:
    dead_letters = RecordingDeadLetters()
    subject = consumer(dead_letters)

    subject.handle(ProbeStore(), probe_handlers(never_reached))

    value = (
        b'{"specversion":"1.0","id":"1","source":"/s","type":"PackagePurchased",'
        b'"data":{"purchaseId":"p","userId":1,"sessions":-3,"purchasedAt":"2026-01-01T00:00:00Z"}}'
    )
    assert await subject.process(record(value)) is Outcome.DEAD_LETTERED
    assert "sessions" in dead_letters.sent[0][1]


def test_a_consumer_has_one_table_of_handlers() -> None:
    subject = consumer(RecordingDeadLetters())
    subject.handle(ProbeStore(), probe_handlers())
    assert subject.event_types == {"PackagePurchased"}
    with pytest.raises(ValueError, match="test already has its handlers"):
        subject.handle(ProbeStore(), probe_handlers())


def test_backoff_doubles_up_to_its_cap() -> None:
    policy = RetryPolicy(first_backoff=0.1, max_backoff=1.0)
    assert [policy.backoff(n) for n in (1, 2, 3, 4, 5, 6)] == [0.1, 0.2, 0.4, 0.8, 1.0, 1.0]


async def test_an_id_beyond_64_bits_is_dead_lettered_when_parsed() -> None:
    dead_letters = RecordingDeadLetters()
    subject = consumer(dead_letters)
    subject.handle(ProbeStore(), probe_handlers(never_reached))

    value = (
        b'{"specversion":"1.0","id":"1","source":"/s","type":"PackagePurchased","data":'
        b'{"purchaseId":"p","userId":9223372036854775808,"sessions":1,'
        b'"purchasedAt":"2026-01-01T00:00:00Z"}}'
    )
    assert await subject.process(record(value)) is Outcome.DEAD_LETTERED
    assert dead_letters.sent[0][1].startswith("invalid PackagePurchased payload: userId")


async def test_a_batchs_dead_letters_are_handed_over_together_in_order() -> None:
    dead_letters = RecordingDeadLetters()
    values = [b"not json", b'"a string"', b"{", b"[]"]
    batch = [record(value, offset) for offset, value in enumerate(values)]

    outcome = await consumer(dead_letters).process_batch(batch)

    assert outcome.outcomes == [Outcome.DEAD_LETTERED] * 4
    assert dead_letters.calls == 1
    assert [letter.offset for letter, _, _ in dead_letters.sent] == [0, 1, 2, 3]


async def test_a_pass_that_leaves_dead_letters_to_the_group_sends_none() -> None:
    dead_letters = RecordingDeadLetters()
    batch = [record(b"not json", 0), record(b"{", 1)]

    outcome = await consumer(dead_letters).process_batch(batch, dead_letter=False)

    assert outcome.outcomes == [Outcome.LEFT, Outcome.LEFT]
    assert dead_letters.sent == []


async def test_a_record_delivered_again_after_its_dead_letter_is_not_lettered_twice() -> None:
    """A batch comes again whole when another of its records must be retried: the letters
    already sent for it were sent a second time (and a third...) before."""
    dead_letters = RecordingDeadLetters()
    consumer = IdempotentConsumer(
        name="t",
        database=Database("postgresql+psycopg://nobody@127.0.0.1:1/none"),
        dead_letters=dead_letters,
    )
    poison = ConsumedRecord(topic="t", partition=0, offset=7, key=b"1", value=b"{", headers=[])
    other_bytes_same_place = ConsumedRecord(
        topic="t", partition=0, offset=7, key=b"1", value=b"}", headers=[]
    )

    for _ in range(3):
        assert await consumer.process(poison) is Outcome.DEAD_LETTERED
    assert await consumer.process(other_bytes_same_place) is Outcome.DEAD_LETTERED

    assert [record.value for record, _, _ in dead_letters.sent] == [b"{", b"}"]
