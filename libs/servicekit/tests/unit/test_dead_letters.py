from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any, cast

import pytest
from aiokafka.errors import KafkaTimeoutError

from servicekit.dead_letters import (
    ConsumedRecord,
    DeadLetters,
    Letter,
    dead_letter_headers,
    dead_letter_topic,
)
from servicekit.kafka import Producer


def record(headers: list[tuple[str, bytes]]) -> ConsumedRecord:
    return ConsumedRecord(
        topic="booking.sessions", partition=2, offset=41, key=b"7", value=b"{}", headers=headers
    )


def test_dead_letter_keeps_original_headers_and_says_why_where_and_who() -> None:
    headers = dead_letter_headers(
        record([("content-type", b"application/cloudevents+json")]),
        reason="not JSON",
        kind="not-json",
        consumer="credits",
    )
    assert headers == [
        ("content-type", b"application/cloudevents+json"),
        ("dlq-reason", b"not JSON"),
        ("dlq-reason-kind", b"not-json"),
        ("dlq-topic", b"booking.sessions"),
        ("dlq-partition", b"2"),
        ("dlq-offset", b"41"),
        ("dlq-consumer", b"credits"),
    ]


def test_a_dead_letter_failing_again_carries_only_its_newest_reason() -> None:
    headers = dead_letter_headers(
        record([("dlq-reason", b"old"), ("dlq-reason-kind", b"a"), ("dlq-consumer", b"b")]),
        reason="new",
        kind="rejected",
        consumer="credits",
    )
    assert [value for name, value in headers if name == "dlq-reason-kind"] == [b"rejected"]
    assert [value for name, value in headers if name == "dlq-reason"] == [b"new"]
    assert [value for name, value in headers if name == "dlq-consumer"] == [b"credits"]


def test_very_long_reasons_are_cut() -> None:
    headers = dict(dead_letter_headers(record([]), reason="x" * 10_000, kind="k", consumer="c"))
    assert len(headers["dlq-reason"]) == 2000


def test_dead_letters_go_to_the_dlq_twin() -> None:
    assert dead_letter_topic("credits.ledger") == "credits.ledger.dlq"
    assert dead_letter_topic("credits.ledger.dlq") == "credits.ledger.dlq"


class HeldProducer:
    """Takes records at once and has the broker answer only when the test says so."""

    def __init__(self) -> None:
        self.queued: list[tuple[str, int | None, bytes | None]] = []
        self.deliveries: list[asyncio.Future[Any]] = []

    async def send(
        self,
        topic: str,
        *,
        value: bytes | None,
        key: bytes | None,
        headers: Sequence[tuple[str, bytes]],
        partition: int | None = None,
    ) -> asyncio.Future[Any]:
        self.queued.append((topic, partition, value))
        delivery: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.deliveries.append(delivery)
        return delivery


def letters(count: int) -> list[Letter]:
    return [
        Letter(
            ConsumedRecord("booking.sessions", 2, offset, b"7", f"{offset}".encode(), []),
            reason="not JSON",
            kind="not-json",
        )
        for offset in range(count)
    ]


async def test_a_batchs_letters_are_queued_in_order_before_any_is_awaited() -> None:
    producer = HeldProducer()
    sending = asyncio.create_task(
        DeadLetters(cast(Producer, producer), consumer="credits").send_all(letters(3))
    )
    await asyncio.sleep(0)

    assert producer.queued == [
        ("booking.sessions.dlq", 2, b"0"),
        ("booking.sessions.dlq", 2, b"1"),
        ("booking.sessions.dlq", 2, b"2"),
    ]
    assert not sending.done()  # not until the broker has every letter
    for delivery in producer.deliveries[:2]:
        delivery.set_result(None)
    await asyncio.sleep(0)
    assert not sending.done()
    producer.deliveries[2].set_result(None)
    await sending


async def test_a_letter_the_broker_refuses_fails_the_send_once_all_have_settled() -> None:
    producer = HeldProducer()
    sending = asyncio.create_task(
        DeadLetters(cast(Producer, producer), consumer="credits").send_all(letters(3))
    )
    await asyncio.sleep(0)

    producer.deliveries[0].set_exception(KafkaTimeoutError())
    await asyncio.sleep(0)
    assert not sending.done()  # the others are still in flight
    producer.deliveries[1].set_result(None)
    producer.deliveries[2].set_result(None)
    with pytest.raises(KafkaTimeoutError):
        await sending
