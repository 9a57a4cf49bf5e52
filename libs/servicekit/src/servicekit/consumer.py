"""The idempotent consumer: every service consumes Kafka through this one piece.

For each record, in order:
1. Parse it as a CloudEvent of the contract. A record that is not JSON, not a CloudEvent or
   schema-invalid goes to the dead-letter topic with the reason, and the consumer moves on.
2. In one database transaction: remember the event id for this consumer (a duplicate stops
   here), then apply the handler for its type. A handler that raises `RuleBroken` refuses
   the event: the transaction rolls back and the record is dead-lettered with the reason.
3. Only after that transaction commits, or the dead letter is on the broker, is the offset
   committed. A crash anywhere before redelivers the record, and step 2 absorbs it.

Transient failures (database or broker unreachable, serialization conflicts) are retried
with backoff and never dead-lettered. Any other failure is retried a few times, then
dead-lettered with the error, so one bad record never stalls its partition.

A service plugs in with one `BatchStore` and one table of handlers (`handle`): the store
loads and locks the state a batch's events name, each handler decides on that plain state
for its event, and the store writes what they decided, set-wise, before the commit.

Each record is handled in its own trace and correlation context (`servicekit.tracing`), and
counted by outcome in the service's metrics, with the handler's time.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from aiokafka.errors import KafkaError
from sqlalchemy import exc as sa_exc
from sqlalchemy import text
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
from contracts.events import EVENT_TYPES, EventPayload
from servicekit import tracing
from servicekit.db import Database
from servicekit.dead_letters import ConsumedRecord, Letter
from servicekit.domain import BatchHandler, Handlers, RuleBroken, S
from servicekit.metrics import UNKNOWN_EVENT_TYPE, Metrics

log = logging.getLogger(__name__)


class BatchStore(Protocol[S]):
    """Where a service's rules meet its database, once per batch, inside its transaction."""

    async def load(self, db: AsyncSession, events: Sequence[Event[Any]]) -> S:
        """Lock and load what `events` name, as the state their handlers decide on."""
        ...

    async def write(self, db: AsyncSession, state: S) -> None:
        """Write what the handlers decided (not called when one failed: it rolls back)."""
        ...


#: Failures that say nothing about the record: wait and try the same record again, forever.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    sa_exc.OperationalError,
    sa_exc.InterfaceError,
    # No pooled connection free in time (`servicekit.db.POOL_TIMEOUT`): not the record's fault.
    sa_exc.TimeoutError,
    KafkaError,
    OSError,
    TimeoutError,
)


#: Kinds of dead-letter reasons, for the metrics (the `dlq-reason` header has the details).
REJECTED = RuleBroken.kind  # a handler said the event breaks a business rule
FAILED = "failed"  # the handler kept failing
_INVALID_KINDS: tuple[tuple[type[InvalidEvent], str], ...] = (
    (NotJson, "not-json"),
    (NotCloudEvent, "not-cloudevent"),
    (UnknownEventType, "unknown-type"),
    (UnsupportedDataVersion, "unsupported-dataversion"),
    (InvalidPayload, "invalid-payload"),
)


#: The reason kind of an event on a topic its source does not write.
FOREIGN_SOURCE = "foreign-source"
#: The reason kind of an event of the contract on a topic that does not carry its type.
WRONG_TOPIC = "wrong-topic"
#: The reason kind of a record whose reading failed in a way no rule names.
UNREADABLE = "unreadable"


def _reason_kind(invalid: InvalidEvent) -> str:
    for kind, name in _INVALID_KINDS:
        if isinstance(invalid, kind):
            return name
    return "invalid"


class DeadLetterSink(Protocol):
    async def send_all(self, letters: Sequence[Letter]) -> None:
        """Write every letter, in order; return only once the broker has them all."""
        ...


class Outcome(StrEnum):
    APPLIED = "applied"
    DUPLICATE = "duplicate"
    IGNORED = "ignored"  # a valid event this consumer has no use for
    DEAD_LETTERED = "dead-lettered"
    LEFT = "left"  # unfit, but left for a later pass to dead-letter (see `process`)
    RETRY = "retry"


#: How many dead-lettered positions a consumer remembers: far more than a batch holds.
LETTERS_REMEMBERED = 10_000


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_attempts: int = 5  # for failures that are not transient
    first_backoff: float = 0.1
    max_backoff: float = 5.0

    def backoff(self, attempt: int) -> float:
        return float(min(self.first_backoff * 2 ** max(attempt - 1, 0), self.max_backoff))


@dataclass(slots=True)
class _Item:
    """One record of a batch on its way through: parsed, then applied or set aside."""

    record: ConsumedRecord
    context: tracing.Context
    envelope: CloudEvent | None = None
    #: Set once its payload is valid for a registered handler.
    event: Event[Any] | None = None
    handler: BatchHandler[Any] | None = None
    outcome: Outcome | None = None
    #: Why it goes to the dead-letter topic, and the kind of reason for the metrics.
    dead: tuple[str, str] | None = None

    @property
    def event_type(self) -> str:
        """The type as metrics label it: one of the contract's, or `unknown` (a label per
        type a producer makes up would grow without end, and may not even encode)."""
        if self.envelope is not None and self.envelope.type in EVENT_TYPES:
            return self.envelope.type
        return UNKNOWN_EVENT_TYPE

    def bound(self) -> contextlib.AbstractContextManager[tracing.Context]:
        context = self.context
        if self.envelope is not None:
            context = context.for_event(self.envelope.id, self.envelope.type)
        return tracing.bound(context)


class _HandlerFailed(Exception):
    def __init__(self, item: _Item, error: Exception) -> None:
        super().__init__(str(error))
        self.item = item
        self.error = error


class _BatchFailed(Exception):
    def __init__(self, error: Exception) -> None:
        super().__init__(f"{type(error).__name__}: {error}")
        self.error = error


@dataclass(frozen=True, slots=True)
class BatchOutcome:
    """What became of each record of a batch (in order), and how long to wait before the
    batch is delivered again when it must be (`retry_after` is None otherwise)."""

    outcomes: list[Outcome]
    retry_after: float | None = None


@dataclass
class IdempotentConsumer:
    """A named consumer: the event types it handles, and how it applies them exactly once."""

    name: str
    database: Database
    dead_letters: DeadLetterSink
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    metrics: Metrics = field(default_factory=Metrics)
    #: Topic (as subscribed) -> the only `source` its events may have (`Topic.sole_source`).
    sole_sources: dict[str, str] = field(default_factory=dict)
    #: Topic (as subscribed) -> the contract's event types it carries (`Topic.event_types`):
    #: an event of another contract type there is refused, whoever wrote it, since each
    #: topic's ACLs say who may speak for the types it carries.
    topic_event_types: dict[str, frozenset[str]] = field(default_factory=dict)
    _store: BatchStore[Any] | None = None
    _handlers: dict[str, tuple[type[EventPayload], BatchHandler[Any]]] = field(default_factory=dict)
    _attempts: dict[tuple[str, int, int], int] = field(default_factory=dict)
    #: Records already dead-lettered (`_letter_key`), newest last: a batch delivered again
    #: (another of its records failed) must not send their letters a second time.
    _lettered: dict[tuple[str, int, int, int], None] = field(default_factory=dict)

    def handle(self, store: BatchStore[S], handlers: Handlers[S]) -> None:
        """Apply the events of these types with their handlers, on the state `store` loads
        for each batch's new events; the types not listed are ignored. Set once: two tables
        would leave no one answer to which store a batch's state comes from."""
        if self._store is not None:
            raise ValueError(f"{self.name} already has its handlers")
        self._store = store
        self._handlers = {model.event_type: (model, handler) for model, handler in handlers.items()}

    @property
    def event_types(self) -> frozenset[str]:
        return frozenset(self._handlers)

    async def process(self, record: ConsumedRecord, *, dead_letter: bool = True) -> Outcome:
        """Apply one record at most once: a batch of one (see `process_batch`). `RETRY`
        means: back off (`backoff_for`), then deliver it again."""
        [outcome] = (await self.process_batch([record], dead_letter=dead_letter)).outcomes
        return outcome

    async def process_batch(
        self, records: Sequence[ConsumedRecord], *, dead_letter: bool = True
    ) -> BatchOutcome:
        """Apply a batch of records at most once each, in one transaction, in their order.

        Records that are not events of the contract are set aside for the dead-letter
        topic; the others are remembered in `processed_events` with one statement (those
        already there are duplicates), and their handlers run. A handler that raises
        `RuleBroken`, or fails `max_attempts` times, takes its record out: the transaction
        rolls back and the batch is applied again without it, so a dead letter is never
        remembered as processed. Only after the commit are the dead letters sent. When the
        batch must be delivered again (a transient failure, or a failure not yet given up
        on), every outcome is `RETRY` and nothing was applied.

        With `dead_letter=False` a record that cannot be applied is `LEFT` alone instead of
        dead-lettered: a pass that reads ahead of the consumer group (`servicekit.history`)
        leaves it for the group's own pass, so it is dead-lettered once.

        Each record's handler runs in the record's trace and correlation context (see
        `servicekit.tracing`), so its logs and the events it writes carry them."""
        items = [self._parse(record) for record in records]
        while True:
            try:
                await self._apply_batch([i for i in items if i.event and not i.dead])
            except _HandlerFailed as failed:
                if self._set_aside(failed):
                    continue  # applied again without it
                transient = isinstance(failed.error, TRANSIENT_ERRORS)
                return self._retry(items, failed.item.record, transient=transient)
            except TRANSIENT_ERRORS as error:
                log.warning("%s: transient failure (%s); retrying the batch", self.name, error)
                return self._retry(items, records[0], transient=True)
            except _BatchFailed as failed:
                log.warning("%s: batch failed (%s); one record at a time", self.name, failed)
                return await self._one_at_a_time(records, dead_letter=dead_letter)
            break
        try:
            await self._dead_letter_all([item for item in items if item.dead], send=dead_letter)
        except TRANSIENT_ERRORS as error:
            log.warning("%s: dead letter not sent (%s); retrying the batch", self.name, error)
            return self._retry(items, records[0], transient=True)
        for item in items:
            assert item.outcome is not None
            self._attempts.pop(_position(item.record), None)
            self._count(item.record, item.event_type, item.outcome)
        return BatchOutcome([item.outcome for item in items if item.outcome is not None])

    async def _one_at_a_time(
        self, records: Sequence[ConsumedRecord], *, dead_letter: bool
    ) -> BatchOutcome:
        """Each record in a transaction of its own, so that a failure names its record. The
        first that must be retried stops the rest: the whole batch comes again, and those
        applied before it are duplicates then."""
        outcomes: list[Outcome] = []
        for record in records:
            single = await self.process_batch([record], dead_letter=dead_letter)
            if single.retry_after is not None:
                return BatchOutcome([Outcome.RETRY] * len(records), single.retry_after)
            outcomes.extend(single.outcomes)
        return BatchOutcome(outcomes)

    def _parse(self, record: ConsumedRecord) -> _Item:
        try:
            return self._read(record)
        except Exception as error:
            # Whatever a record holds, reading it must not stall its partition: a record
            # that cannot be read now never can.
            log.exception("%s: reading a record failed", self.name)
            item = _Item(record, tracing.Context(trace=tracing.TraceParent.start()))
            item.dead = (f"could not be read: {type(error).__name__}: {error}", UNREADABLE)
            return item

    def _read(self, record: ConsumedRecord) -> _Item:
        item = _Item(record, tracing.from_record(record.headers))
        try:
            item.envelope = envelope = parse_envelope(record.value or b"")
        except InvalidEvent as invalid:
            item.dead = (invalid.reason, _reason_kind(invalid))
            return item
        sole_source = self.sole_sources.get(record.topic)
        if sole_source is not None and envelope.source != sole_source:
            item.dead = (
                f"{envelope.type} from {envelope.source}: only {sole_source} writes {record.topic}",
                FOREIGN_SOURCE,
            )
            return item
        carried = self.topic_event_types.get(record.topic)
        if carried is not None and envelope.type in EVENT_TYPES and envelope.type not in carried:
            item.dead = (f"{envelope.type} is not carried by {record.topic}", WRONG_TOPIC)
            return item
        registered = self._handlers.get(envelope.type)
        if registered is None:
            item.outcome = Outcome.IGNORED
            return item
        model, item.handler = registered
        try:
            item.event = parse_payload(envelope, model)
        except InvalidEvent as invalid:
            item.dead = (invalid.reason, _reason_kind(invalid))
        return item

    async def _apply_batch(self, items: list[_Item]) -> None:
        if not items:
            return
        async with self.database.transaction() as db:
            fresh = await remember_all(
                db,
                self.name,
                [(item.event.id, item.event.type) for item in items if item.event],
            )
            to_apply = []
            for item in items:
                assert item.event is not None
                if item.event.id in fresh:
                    fresh.discard(item.event.id)  # a second copy in the same batch is a duplicate
                    to_apply.append(item)
                else:
                    item.outcome = Outcome.DUPLICATE
            if not to_apply:
                return
            assert self._store is not None  # handlers come with their store
            events = [item.event for item in to_apply if item.event is not None]
            try:
                state = await self._store.load(db, events)
                for item in to_apply:
                    self._run_handler(state, item)
                await self._store.write(db, state)
            except _HandlerFailed:
                raise
            except TRANSIENT_ERRORS:
                raise
            except Exception as error:
                # Loading or writing the batch failed: no one record to blame, unless alone.
                if len(to_apply) == 1:
                    raise _HandlerFailed(to_apply[0], error) from error
                raise _BatchFailed(error) from error

    def _run_handler(self, state: object, item: _Item) -> None:
        assert item.event is not None
        assert item.handler is not None
        with item.bound():
            try:
                metrics = self.metrics
                with metrics.labelled(metrics.handler_duration, item.event.type).time():
                    item.handler(state, item.event)
            except Exception as error:
                raise _HandlerFailed(item, error) from error
            item.outcome = Outcome.APPLIED
            log.info("%s: applied %s", self.name, item.event.type)

    def _set_aside(self, failed: _HandlerFailed) -> bool:
        """Decide whether a handler's failure takes its record out of the batch."""
        item, error = failed.item, failed.error
        event_id = item.event.id if item.event is not None else "?"
        if isinstance(error, RuleBroken):
            item.dead = (error.reason, error.kind)
            return True
        if isinstance(error, TRANSIENT_ERRORS):
            log.warning("%s: transient failure on %s (%s); retrying", self.name, event_id, error)
            return False
        attempts = self._attempts.get(_position(item.record), 0) + 1
        if attempts >= self.retry.max_attempts:
            giving_up = "%s: giving up on %s after %d attempts"
            log.error(giving_up, self.name, event_id, attempts, exc_info=error)
            item.dead = (f"failed {attempts} times: {type(error).__name__}: {error}", FAILED)
            return True
        log.error("%s: attempt %d failed on %s", self.name, attempts, event_id, exc_info=error)
        return False

    def _count(self, record: ConsumedRecord, event_type: str, outcome: Outcome) -> None:
        metrics = self.metrics
        metrics.labelled(metrics.events_consumed, record.topic, event_type, outcome.value).inc()

    async def record_own_event(self, db: AsyncSession, event: CloudEvent) -> None:
        """Mark an event this service publishes as already applied by its own consumer.

        A service whose store is a projection of a topic it also writes to (booking) applies
        a change and records its event in one transaction; when the event comes back from
        the topic it is then a duplicate. A rebuild from an empty database has no such marks
        and applies every event, its own included."""
        await self.record_own_events(db, [event])

    async def record_own_events(self, db: AsyncSession, events: Sequence[CloudEvent]) -> None:
        """`record_own_event` for many, in one statement."""
        if events:
            await remember_all(db, self.name, [(event.id, event.type) for event in events])

    def backoff_for(self, record: ConsumedRecord) -> float:
        return self.retry.backoff(self._attempts.get(_position(record), 1))

    def _retry(
        self, items: list[_Item], culprit: ConsumedRecord, *, transient: bool
    ) -> BatchOutcome:
        position = _position(culprit)
        attempts = self._attempts.get(position, 0) + 1
        # Transient failures back off too, but never count towards dead-lettering.
        self._attempts[position] = (
            min(attempts, self.retry.max_attempts - 1) if transient else attempts
        )
        for item in items:
            self._count(item.record, item.event_type, Outcome.RETRY)
        return BatchOutcome([Outcome.RETRY] * len(items), retry_after=self.backoff_for(culprit))

    async def _dead_letter_all(self, items: Sequence[_Item], *, send: bool) -> None:
        """Send a batch's dead letters together, in order: one wait for the broker rather
        than a round trip each. Every letter is on the broker before this returns, so
        before any offset past it is committed."""
        if not send:
            for item in items:
                item.outcome = Outcome.LEFT
            return
        # By the letters remembered, not `outcome is None`: a record set aside after its
        # handler ran says APPLIED.
        unsent = []
        for item in items:
            if _letter_key(item.record) in self._lettered:
                item.outcome = Outcome.DEAD_LETTERED
            else:
                unsent.append(item)
        items = unsent
        letters = []
        for item in items:
            assert item.dead is not None
            reason, kind = item.dead
            record = item.record
            with item.bound():
                log.warning(
                    "%s: dead-lettering %s[%d]@%d: %s",
                    self.name,
                    record.topic,
                    record.partition,
                    record.offset,
                    reason,
                )
            letters.append(Letter(record, reason, kind))
        if letters:
            await self.dead_letters.send_all(letters)
        for letter, item in zip(letters, items, strict=True):
            self.metrics.events_dead_lettered.labels(
                topic=letter.record.topic, reason=letter.kind
            ).inc()
            item.outcome = Outcome.DEAD_LETTERED
            self._lettered[_letter_key(item.record)] = None
        while len(self._lettered) > LETTERS_REMEMBERED:
            del self._lettered[next(iter(self._lettered))]


async def remember_all(
    db: AsyncSession, consumer: str, events: Sequence[tuple[str, str]]
) -> set[str]:
    """Record that `consumer` applied these events (id, type); the ids it had not before."""
    # Arrays, not rows of parameters: the statement's text is the same whatever the batch
    # size, so PostgreSQL and the driver parse and plan it once.
    inserted = await db.execute(
        text(
            "insert into processed_events (consumer, event_id, event_type)"
            " select :consumer, * from unnest(cast(:ids as text[]), cast(:types as text[]))"
            " on conflict do nothing returning event_id"
        ),
        {"consumer": consumer, "ids": [i for i, _ in events], "types": [t for _, t in events]},
    )
    return set(inserted.scalars())


def _position(record: ConsumedRecord) -> tuple[str, int, int]:
    return (record.topic, record.partition, record.offset)


def _letter_key(record: ConsumedRecord) -> tuple[str, int, int, int]:
    """A record's position and a hash of its bytes: the same record when delivered again."""
    return (*_position(record), hash(record.value))
