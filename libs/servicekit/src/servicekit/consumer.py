"""The idempotent consumer: every service consumes Kafka through this one piece.

For each record, in order:
1. Parse it as a CloudEvent of the contract. A record that is not JSON, not a CloudEvent or
   schema-invalid goes to the dead-letter topic with the reason, and the consumer moves on.
2. In one database transaction: remember the event id for this consumer (a duplicate stops
   here), then apply the handler for its type. A handler that raises `Rejected` breaks a
   business rule: the transaction rolls back and the record is dead-lettered.
3. Only after that transaction commits, or the dead letter is on the broker, is the offset
   committed. A crash anywhere before redelivers the record, and step 2 absorbs it.

Transient failures (database or broker unreachable, serialization conflicts) are retried
with backoff and never dead-lettered. Any other failure is retried a few times, then
dead-lettered with the error, so one bad record never stalls its partition.

Each record is handled in its own trace and correlation context (`servicekit.tracing`), and
counted by outcome in the service's metrics, with the handler's time.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol, TypeVar

from aiokafka.errors import KafkaError
from sqlalchemy import exc as sa_exc
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.envelope import (
    CloudEvent,
    Event,
    InvalidEvent,
    InvalidPayload,
    NotCloudEvent,
    NotJson,
    UnknownEventType,
    UnsupportedDataVersion,
    parse_envelope,
    parse_payload,
)
from contracts.events import EventPayload
from servicekit import tracing
from servicekit.db import Database
from servicekit.dead_letters import ConsumedRecord
from servicekit.metrics import UNKNOWN_EVENT_TYPE, Metrics
from servicekit.tables import processed_events

log = logging.getLogger(__name__)

P = TypeVar("P", bound=EventPayload)
Handler = Callable[[AsyncSession, Event[P]], Awaitable[None]]

#: Failures that say nothing about the record: wait and try the same record again, forever.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    sa_exc.OperationalError,
    sa_exc.InterfaceError,
    KafkaError,
    OSError,
    TimeoutError,
)


#: Kinds of dead-letter reasons, for the metrics (the `dlq-reason` header has the details).
REJECTED = "rejected"  # a handler said the event breaks a business rule
FAILED = "failed"  # the handler kept failing
_INVALID_KINDS: tuple[tuple[type[InvalidEvent], str], ...] = (
    (NotJson, "not-json"),
    (NotCloudEvent, "not-cloudevent"),
    (UnknownEventType, "unknown-type"),
    (UnsupportedDataVersion, "unsupported-dataversion"),
    (InvalidPayload, "invalid-payload"),
)


def _reason_kind(invalid: InvalidEvent) -> str:
    for kind, name in _INVALID_KINDS:
        if isinstance(invalid, kind):
            return name
    return "invalid"


class DeadLetterSink(Protocol):
    async def send(self, record: ConsumedRecord, reason: str) -> None: ...


class Rejected(Exception):
    """Raised by a handler when an event breaks a business rule and can never be applied."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Outcome(StrEnum):
    APPLIED = "applied"
    DUPLICATE = "duplicate"
    IGNORED = "ignored"  # a valid event this consumer has no use for
    DEAD_LETTERED = "dead-lettered"
    LEFT = "left"  # unfit, but left for a later pass to dead-letter (see `process`)
    RETRY = "retry"


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_attempts: int = 5  # for failures that are not transient
    first_backoff: float = 0.1
    max_backoff: float = 5.0

    def backoff(self, attempt: int) -> float:
        return float(min(self.first_backoff * 2 ** max(attempt - 1, 0), self.max_backoff))


@dataclass
class IdempotentConsumer:
    """A named consumer: the event types it handles, and how it applies them exactly once."""

    name: str
    database: Database
    dead_letters: DeadLetterSink
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    metrics: Metrics = field(default_factory=Metrics)
    _handlers: dict[str, tuple[type[EventPayload], Handler[Any]]] = field(default_factory=dict)
    _attempts: dict[tuple[str, int, int], int] = field(default_factory=dict)

    def on(self, model: type[P]) -> Callable[[Handler[P]], Handler[P]]:
        """Register the handler of one event type."""

        def register(handler: Handler[P]) -> Handler[P]:
            if model.event_type in self._handlers:
                raise ValueError(f"{self.name} already handles {model.event_type}")
            self._handlers[model.event_type] = (model, handler)
            return handler

        return register

    @property
    def event_types(self) -> frozenset[str]:
        return frozenset(self._handlers)

    async def process(self, record: ConsumedRecord, *, dead_letter: bool = True) -> Outcome:
        """Apply one record at most once. `RETRY` means: back off, then deliver it again.

        With `dead_letter=False` a record that cannot be applied is `LEFT` alone instead of
        dead-lettered: a pass that reads ahead of the consumer group (`servicekit.history`)
        leaves it for the group's own pass, so it is dead-lettered once.

        It runs in the record's trace and correlation context (see `servicekit.tracing`), so
        its logs and the events its handler writes carry them."""
        with tracing.bound(tracing.from_record(record.headers)) as context:
            try:
                envelope = parse_envelope(record.value or b"")
            except InvalidEvent as invalid:
                outcome = await self._dead_letter(
                    record, invalid.reason, _reason_kind(invalid), send=dead_letter
                )
                self._count(record, UNKNOWN_EVENT_TYPE, outcome)
                return outcome
            with tracing.bound(context.for_event(envelope.id, envelope.type)):
                outcome = await self._process(record, envelope, dead_letter=dead_letter)
                self._count(record, envelope.type, outcome)
                if outcome is Outcome.APPLIED:
                    log.info("%s: applied %s", self.name, envelope.type)
                elif outcome in (Outcome.DUPLICATE, Outcome.IGNORED):
                    log.debug("%s: %s %s", self.name, outcome, envelope.type)
                return outcome

    async def _process(
        self, record: ConsumedRecord, envelope: CloudEvent, *, dead_letter: bool
    ) -> Outcome:
        registered = self._handlers.get(envelope.type)
        if registered is None:
            return Outcome.IGNORED
        model, handler = registered
        try:
            event = parse_payload(envelope, model)
        except InvalidEvent as invalid:
            return await self._dead_letter(
                record, invalid.reason, _reason_kind(invalid), send=dead_letter
            )
        try:
            with self.metrics.handler_duration.labels(event_type=event.type).time():
                applied = await self._apply(event, handler)
        except Rejected as rejected:
            return await self._dead_letter(record, rejected.reason, REJECTED, send=dead_letter)
        except TRANSIENT_ERRORS as error:
            log.warning("%s: transient failure on %s (%s); retrying", self.name, event.id, error)
            return self._retry(record, transient=True)
        except Exception as error:
            attempts = self._attempts.get(_position(record), 0) + 1
            if attempts >= self.retry.max_attempts:
                log.exception(
                    "%s: giving up on %s after %d attempts", self.name, event.id, attempts
                )
                return await self._dead_letter(
                    record,
                    f"failed {attempts} times: {type(error).__name__}: {error}",
                    FAILED,
                    send=dead_letter,
                )
            log.exception("%s: attempt %d failed on %s", self.name, attempts, event.id)
            return self._retry(record, transient=False)
        self._attempts.pop(_position(record), None)
        return Outcome.APPLIED if applied else Outcome.DUPLICATE

    def _count(self, record: ConsumedRecord, event_type: str, outcome: Outcome) -> None:
        self.metrics.events_consumed.labels(
            topic=record.topic, event_type=event_type, outcome=outcome.value
        ).inc()

    async def record_own_event(self, session: AsyncSession, event: CloudEvent) -> None:
        """Mark an event this service publishes as already applied by its own consumer.

        A service whose store is a projection of a topic it also writes to (booking) applies
        a change and records its event in one transaction; when the event comes back from
        the topic it is then a duplicate. A rebuild from an empty database has no such marks
        and applies every event, its own included."""
        await remember(session, self.name, event_id=event.id, event_type=event.type)

    async def has_applied(self, session: AsyncSession, event_id: str) -> bool:
        """Whether this consumer has applied the event `event_id`."""
        found = await session.scalar(
            select(processed_events.c.event_id).where(
                processed_events.c.consumer == self.name, processed_events.c.event_id == event_id
            )
        )
        return found is not None

    def backoff_for(self, record: ConsumedRecord) -> float:
        return self.retry.backoff(self._attempts.get(_position(record), 1))

    async def _apply(self, event: Event[Any], handler: Handler[Any]) -> bool:
        async with self.database.transaction() as session:
            if not await remember(session, self.name, event_id=event.id, event_type=event.type):
                return False
            await handler(session, event)
        return True

    def _retry(self, record: ConsumedRecord, *, transient: bool) -> Outcome:
        position = _position(record)
        attempts = self._attempts.get(position, 0) + 1
        # Transient failures back off too, but never count towards dead-lettering.
        self._attempts[position] = (
            min(attempts, self.retry.max_attempts - 1) if transient else attempts
        )
        return Outcome.RETRY

    async def _dead_letter(
        self, record: ConsumedRecord, reason: str, kind: str, *, send: bool
    ) -> Outcome:
        self._attempts.pop(_position(record), None)
        if not send:
            return Outcome.LEFT
        log.warning(
            "%s: dead-lettering %s[%d]@%d: %s",
            self.name,
            record.topic,
            record.partition,
            record.offset,
            reason,
        )
        await self.dead_letters.send(record, reason)
        self.metrics.events_dead_lettered.labels(topic=record.topic, reason=kind).inc()
        return Outcome.DEAD_LETTERED


async def remember(session: AsyncSession, consumer: str, *, event_id: str, event_type: str) -> bool:
    """Record that `consumer` applied an event; False when it already had."""
    inserted = await session.execute(
        pg_insert(processed_events)
        .values(consumer=consumer, event_id=event_id, event_type=event_type)
        .on_conflict_do_nothing()
        .returning(processed_events.c.event_id)
    )
    return inserted.first() is not None


def _position(record: ConsumedRecord) -> tuple[str, int, int]:
    return (record.topic, record.partition, record.offset)
