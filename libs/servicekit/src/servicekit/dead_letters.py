"""The dead-letter path: a record that can never be processed goes to `<topic>.dlq` with the
original key, bytes and headers, plus headers that say why, where from and which consumer."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from contracts.dead_letters import (
    CONSUMER,
    DLQ_HEADERS,
    OFFSET,
    PARTITION,
    REASON,
    REASON_KIND,
    TOPIC,
)
from contracts.topics import DEAD_LETTER_SUFFIX
from servicekit.kafka import Producer

#: Kafka headers are small; a reason longer than this is cut (the record itself is kept whole).
MAX_REASON_LENGTH = 2000


@dataclass(frozen=True, slots=True)
class ConsumedRecord:
    """What the dead-letter path needs of a consumed record."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Sequence[tuple[str, bytes]]

    @classmethod
    def of(cls, record: Any) -> ConsumedRecord:
        """From an aiokafka ConsumerRecord (aiokafka ships no types, hence Any)."""
        return cls(
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            key=record.key,
            value=record.value,
            headers=list(record.headers or ()),
        )


def dead_letter_headers(
    record: ConsumedRecord, *, reason: str, kind: str, consumer: str
) -> list[tuple[str, bytes]]:
    # A redriven record that fails again keeps one set of dlq headers: the newest.
    original = [(name, value) for name, value in record.headers if name not in DLQ_HEADERS]
    return [
        *original,
        (REASON, reason[:MAX_REASON_LENGTH].encode()),
        (REASON_KIND, kind.encode()),
        (TOPIC, record.topic.encode()),
        (PARTITION, str(record.partition).encode()),
        (OFFSET, str(record.offset).encode()),
        (CONSUMER, consumer.encode()),
    ]


def dead_letter_topic(topic: str) -> str:
    return topic if topic.endswith(DEAD_LETTER_SUFFIX) else topic + DEAD_LETTER_SUFFIX


class Letter(NamedTuple):
    """A record on its way to the dead-letter topic, and why."""

    record: ConsumedRecord
    reason: str
    kind: str


class DeadLetters:
    """Sends dead letters and waits until the broker has them: only then may the consumer
    commit past the original record."""

    def __init__(self, producer: Producer, *, consumer: str) -> None:
        self.producer = producer
        self.consumer = consumer

    async def send(self, record: ConsumedRecord, reason: str, kind: str) -> None:
        await self.send_all([Letter(record, reason, kind)])

    async def send_all(self, letters: Sequence[Letter]) -> None:
        """Queue every letter in order, then wait for them together: they share requests
        and one round trip. Returns once the broker has each; a failure is raised only
        after every letter queued has settled, so none is left in flight."""
        queued: list[asyncio.Future[Any]] = []
        try:
            for record, reason, kind in letters:
                queued.append(await self._queue(record, reason, kind))
        finally:
            settled = await asyncio.gather(*queued, return_exceptions=True)
        for outcome in settled:
            if isinstance(outcome, BaseException):
                raise outcome

    async def _queue(self, record: ConsumedRecord, reason: str, kind: str) -> asyncio.Future[Any]:
        return await self.producer.send(
            dead_letter_topic(record.topic),
            value=record.value,
            key=record.key,
            # The same partition as the original keeps a key's dead letters in order.
            partition=record.partition,
            headers=dead_letter_headers(record, reason=reason, kind=kind, consumer=self.consumer),
        )
