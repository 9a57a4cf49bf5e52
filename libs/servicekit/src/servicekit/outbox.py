"""The transactional outbox: write an event with the change it announces, publish it after.

`Outbox.add` runs inside the caller's transaction, so the event exists exactly when the change
does. `OutboxRelay` publishes pending rows in id order with the idempotent producer and then
deletes them. A crash between publishing and deleting publishes the rows again with the same
event ids, which consumers absorb.

Why rows cannot be skipped: the relay never remembers a "last id". Each round it takes every
row still in the table, so a transaction that took a low id but committed late is simply
published in a later round. Per-key order holds because a service writes one entity's
events while holding that entity's row lock, so their ids follow their commits.

Only one relay publishes at a time per database (a transaction-scoped advisory lock), which
keeps the order across replicas of a service; the others wait for their turn.

A row the broker refuses for good (larger than its topic's `max.message.bytes`, or than the
producer's `max_request_size`) must not stall everything behind it, nor be lost: it stays in
the outbox, is logged and counted (`platform_events_refused_total`), and is set aside for
`refused_retry_interval` while the rows after it are published; then it is tried again, so
raising the topic's limit publishes it with no one touching the row. Its key's later events
are published before it meanwhile (docs/reliability.md, Resource edges).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Iterable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aiokafka.errors import MessageSizeTooLargeError
from sqlalchemy import BIGINT, delete, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.envelope import (
    CloudEvent,
    build_event,
    encode,
    partition_key,
    record_headers,
    topic_of,
)
from contracts.events import EventPayload
from servicekit import tracing
from servicekit.db import Database, any_of, columns_of, insert_rows
from servicekit.domain import Announced
from servicekit.kafka import Producer
from servicekit.metrics import Metrics, OutboxBacklog
from servicekit.notifications import listen
from servicekit.settings import BATCH_SIZE
from servicekit.tables import outbox

log = logging.getLogger(__name__)

NOTIFY_CHANNEL = "outbox"
#: Any constant works: it only has to be the same for every replica of a service, and each
#: service has a database of its own.
RELAY_LOCK_KEY = 0x6F7574626F78
#: How long a row the broker refused is set aside before it is tried again, in seconds.
REFUSED_RETRY_INTERVAL = 300.0
#: What says that one record can never be published as it is, whatever is retried.
REFUSED_ERRORS: tuple[type[Exception], ...] = (MessageSizeTooLargeError,)
#: The transaction of a database session that has already woken the relay (in its `info`).
_NOTIFIED = "outbox-notified"

_COLUMNS = ("event_id", "event_type", "topic", "key", "value", "headers")
#: The same event recorded twice before it is published is still one event.
_INSERT = insert_rows(outbox, _COLUMNS, then="on conflict (event_id) do nothing")
#: The same, and the relay's wake-up, in one round trip.
_INSERT_AND_NOTIFY = text(
    f"with recorded as ({_INSERT.text}) select pg_notify('{NOTIFY_CHANNEL}', '')"
)


class Outbox:
    """Where a service records the events its changes announce."""

    def __init__(self, *, source: str, topic_prefix: str = "") -> None:
        self.source = source
        self.topic_prefix = topic_prefix

    async def add(
        self,
        db: AsyncSession,
        payload: EventPayload,
        *,
        event_id: str | None = None,
        time: datetime | None = None,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> CloudEvent:
        """Record an event in the caller's transaction; it is published once that commits.
        Give `event_id` when the same change may be recorded again (a rebuild, a retry): the
        same id lets every consumer recognise it. Give `time` when the change stores the
        moment too, so that a rebuild from the event restores the same moment.

        The event carries the current trace and correlation context (`servicekit.tracing`:
        the request or consumed event that caused it) in its headers; `headers` given here
        are added, and win over those of the context with the same name."""
        announcement = self.prepare(payload, event_id=event_id, time=time, headers=headers)
        await self.insert(db, [announcement])
        return announcement.event

    def prepare(
        self,
        payload: EventPayload,
        *,
        event_id: str | None = None,
        time: datetime | None = None,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> Announcement:
        """An event ready to be recorded, in the current trace context, as `add` would;
        record many at once with `insert` (one statement for a whole batch)."""
        event = build_event(payload, source=self.source, event_id=event_id, time=time)
        context_headers = tracing.propagation_headers()
        if headers:
            overridden = {name for name, _ in headers}
            context_headers = [h for h in context_headers if h[0] not in overridden]
        all_headers = [*record_headers(), *context_headers, *(headers or [])]
        return Announcement(
            event,
            {
                "event_id": event.id,
                "event_type": event.type,
                "topic": self.topic_prefix + topic_of(payload).name,
                "key": partition_key(payload),
                "value": encode(event),
                # JSON text: `insert` sends the column as one array, cast to jsonb there.
                "headers": json.dumps([[name, value.decode()] for name, value in all_headers]),
            },
        )

    def prepare_decided(self, decided: Iterable[Announced]) -> list[Announcement]:
        """The events a service's rules decided to announce, each prepared in the trace
        context it was decided in (that of the event or request that caused it)."""
        prepared = []
        for announced in decided:
            with tracing.bound(announced.context) if announced.context else nullcontext():
                prepared.append(self.prepare(announced.payload, event_id=announced.event_id))
        return prepared

    async def insert(self, db: AsyncSession, announcements: Sequence[Announcement]) -> None:
        """Record prepared events in the caller's transaction, in their order."""
        if not announcements:
            return
        rows = columns_of([a.row for a in announcements], _COLUMNS)
        # The notification is delivered at commit, and only if the transaction commits: it
        # wakes the relay. One per transaction is enough, however many events it records.
        transaction = db.sync_session.get_transaction()
        if transaction is None or db.info.get(_NOTIFIED) is not transaction:
            await db.execute(_INSERT_AND_NOTIFY, rows)
            db.info[_NOTIFIED] = transaction
        else:
            await db.execute(_INSERT, rows)


@dataclass(frozen=True, slots=True)
class Announcement:
    """An event and its outbox row, prepared by `Outbox.prepare`."""

    event: CloudEvent
    row: dict[str, Any]


class OutboxRelay:
    """Publishes the outbox: woken by NOTIFY, with a slow poll as the safety net."""

    def __init__(
        self,
        database: Database,
        producer: Producer,
        *,
        batch_size: int = BATCH_SIZE,
        poll_interval: float = 2.0,
        max_backoff: float = 10.0,
        refused_retry_interval: float = REFUSED_RETRY_INTERVAL,
        metrics: Metrics | None = None,
    ) -> None:
        self.database = database
        self.producer = producer
        self.metrics = metrics or Metrics()
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.max_backoff = max_backoff
        self.refused_retry_interval = refused_retry_interval
        #: Outbox row id -> when the broker last refused it (monotonic seconds).
        self._refused: dict[int, float] = {}
        self._wake = asyncio.Event()

    async def run(self) -> None:
        """Publish until cancelled. Failures (Kafka or database down) are retried with backoff."""
        listener = asyncio.create_task(self._listen(), name="outbox-listener")
        backoff = 0.1
        try:
            while True:
                try:
                    published = await self.publish_pending()
                    backoff = 0.1
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("outbox relay failed; retrying in %.1fs", backoff)
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, self.max_backoff)
                    continue
                if published < self.batch_size:
                    await self._wait_for_work()
        finally:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listener

    async def publish_pending(self) -> int:
        """Publish one batch of pending rows; return how many were published."""
        async with self.database.transaction() as db:
            if not await db.scalar(select(func.pg_try_advisory_xact_lock(RELAY_LOCK_KEY))):
                return 0
            query = select(
                outbox.c.id,
                outbox.c.event_type,
                outbox.c.topic,
                outbox.c.key,
                outbox.c.value,
                outbox.c.headers,
            )
            set_aside = self._set_aside()
            if set_aside:
                query = query.where(~(outbox.c.id == any_of(set_aside, BIGINT)))
            rows = (await db.execute(query.order_by(outbox.c.id).limit(self.batch_size))).all()
            if not rows:
                return 0
            published = await self._publish(rows)
            for row in published:
                counter = self.metrics.events_published
                counter.labels(topic=row.topic, event_type=row.event_type).inc()
            # One array parameter: the statement's text is the same whatever the batch size.
            await db.execute(
                delete(outbox).where(outbox.c.id == any_of([row.id for row in published], BIGINT))
            )
        return len(rows)

    async def _publish(self, rows: Sequence[Any]) -> list[Any]:
        """Publish `rows`; those the broker has. A refused one is set aside; any other
        failure raises, and the whole batch is tried again (its copies are duplicates)."""
        deliveries = [await self._send(row) for row in rows]
        results = await asyncio.gather(*deliveries, return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException) and not isinstance(result, REFUSED_ERRORS):
                raise result
        published = [
            row
            for row, result in zip(rows, results, strict=True)
            if not isinstance(result, BaseException)
        ]
        for row, result in zip(rows, results, strict=True):
            if not isinstance(result, REFUSED_ERRORS):
                continue
            # A record refused only for sharing a request with a larger one goes through
            # alone; one refused alone is the culprit.
            try:
                await (await self._send(row))
            except REFUSED_ERRORS as error:
                self._refuse(row, error)
            else:
                published.append(row)
        return published

    async def _send(self, row: Any) -> asyncio.Future[Any]:
        """The delivery of one row; refused before it leaves (larger than the producer's
        own limit) reads as a delivery that failed, like one the broker refused."""
        try:
            return await self.producer.send(
                row.topic, value=row.value, key=row.key, headers=_headers(row.headers)
            )
        except REFUSED_ERRORS as error:
            refused: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            refused.set_exception(error)
            return refused

    def _refuse(self, row: Any, error: Exception) -> None:
        self._refused[row.id] = time.monotonic()
        self.metrics.events_refused.labels(topic=row.topic, event_type=row.event_type).inc()
        log.error(
            "outbox: %s (row %d, %d bytes) refused by %s (%s: %s); left in the outbox, the "
            "events after it go on, tried again in %.0f s",
            row.event_type,
            row.id,
            len(row.value),
            row.topic,
            type(error).__name__,
            error,
            self.refused_retry_interval,
        )

    def _set_aside(self) -> list[int]:
        """The rows refused less than `refused_retry_interval` ago."""
        now = time.monotonic()
        self._refused = {
            row_id: at
            for row_id, at in self._refused.items()
            if now - at < self.refused_retry_interval
        }
        return list(self._refused)

    async def backlog(self) -> int:
        async with self.database.transaction() as db:
            return int(await db.scalar(select(func.count()).select_from(outbox)) or 0)

    async def backlog_state(self) -> OutboxBacklog:
        """How many rows wait, and for how long the oldest has: one query on a table that
        published rows leave, so it stays small unless the relay is stuck."""
        async with self.database.transaction() as db:
            row = (
                await db.execute(
                    select(
                        func.count(),
                        func.coalesce(
                            func.extract("epoch", func.now() - func.min(outbox.c.created_at)), 0
                        ),
                    ).select_from(outbox)
                )
            ).one()
        return OutboxBacklog(rows=int(row[0]), oldest_age_seconds=max(float(row[1]), 0.0))

    async def _wait_for_work(self) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout=self.poll_interval)
        self._wake.clear()

    async def _listen(self) -> None:
        """Wake the relay on each notification, and each time listening (re)starts: to catch
        up on whatever was written while not listening. The poll keeps the relay going while
        the listener reconnects."""
        await listen(
            self.database.url,
            NOTIFY_CHANNEL,
            on_notify=lambda _: self._wake.set(),
            on_listening=self._wake.set,
            retry_interval=self.poll_interval,
        )


def _headers(stored: Any) -> list[tuple[str, bytes]]:
    return [(str(name), str(value).encode()) for name, value in stored]
