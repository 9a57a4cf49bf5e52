"""Helpers for tests that run against real Kafka and PostgreSQL: waiting for a condition,
reading topics without a consumer group, looking at a group's committed offsets, migrating a
scratch database, feeding events straight to a service's consumer, and reading what a
service has put in its outbox."""

from __future__ import annotations

import asyncio
import inspect
import uuid
from argparse import Namespace
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, TypeAlias

from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.structs import TopicPartition
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import MetaData, create_engine, select

from contracts.envelope import (
    Event,
    build_event,
    encode,
    parse_event,
    partition_key,
    record_headers,
    topic_of,
)
from contracts.events import EventPayload
from servicekit.consumer import Outcome
from servicekit.db import Database
from servicekit.dead_letters import ConsumedRecord, Letter
from servicekit.kafka import client_options
from servicekit.migrations import ALLOW_DATA_LOSS
from servicekit.tables import outbox

#: A test's way to hand an event to a service's consumer (the `deliver` fixture, testkit.plugin).
Deliver = Callable[..., Awaitable[Outcome]]

#: An aiokafka ConsumerRecord; aiokafka ships no type information, so it is Any to mypy.
Record: TypeAlias = Any


async def eventually(check: Callable[[], bool | Awaitable[bool]], *, within: float = 20.0) -> None:
    """Wait until `check()` holds (a plain or an async check); TimeoutError after `within` s."""
    async with asyncio.timeout(within):
        while True:
            result = check()
            if await result if inspect.isawaitable(result) else result:
                return
            await asyncio.sleep(0.05)


async def _partitions(consumer: AIOKafkaConsumer, topic: str) -> list[TopicPartition]:
    partitions = consumer.partitions_for_topic(topic)
    if not partitions:
        await consumer._client.force_metadata_update()
        partitions = consumer.partitions_for_topic(topic)
    return [TopicPartition(topic, p) for p in sorted(partitions or ())]


async def end_offsets(bootstrap: str, topic: str) -> dict[TopicPartition, int]:
    consumer = AIOKafkaConsumer(**client_options(), bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        return dict(await consumer.end_offsets(await _partitions(consumer, topic)))
    finally:
        await consumer.stop()


async def read_topic(
    bootstrap: str,
    topic: str,
    *,
    until: Callable[[list[Record]], bool],
    start: dict[TopicPartition, int] | None = None,
    within: float = 20.0,
) -> list[Record]:
    """Read `topic` from `start` (default: the beginning) until `until(records)` holds."""
    consumer = AIOKafkaConsumer(**client_options(), bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        partitions = await _partitions(consumer, topic)
        consumer.assign(partitions)
        for partition in partitions:
            consumer.seek(partition, (start or {}).get(partition, 0))
        records: list[Record] = []
        async with asyncio.timeout(within):
            while not until(records):
                for batch in (await consumer.getmany(timeout_ms=100)).values():
                    records.extend(batch)
        return records
    finally:
        await consumer.stop()


async def committed_offsets(bootstrap: str, group: str) -> dict[TopicPartition, int]:
    """The offsets `group` has committed (partitions it never committed are absent)."""
    admin = AIOKafkaAdminClient(**client_options(), bootstrap_servers=bootstrap)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group)
    finally:
        await admin.close()
    return {tp: meta.offset for tp, meta in offsets.items() if meta.offset >= 0}


def migrate(service_directory: Path, url: str, revision: str = "head") -> None:
    """Run a service's Alembic migrations up (or down) to `revision` on the database `url`."""
    command.upgrade(_alembic_config(service_directory, url), revision)


def downgrade(
    service_directory: Path, url: str, revision: str, *, allow_data_loss: bool = False
) -> None:
    """Run a service's migrations down to `revision`; one that would lose data refuses
    unless `allow_data_loss` (`alembic -x allow-data-loss=true`)."""
    arguments = [f"{ALLOW_DATA_LOSS}=true"] if allow_data_loss else []
    command.downgrade(_alembic_config(service_directory, url, *arguments), revision)


def schema_differences(url: str, metadata: MetaData) -> list[Any]:
    """What the migrated database at `url` lacks or has beyond the models' `metadata` (its
    tables only: another's, such as the plumbing servicekit checks, are left out)."""
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(
                connection,
                opts={
                    "compare_type": True,
                    "include_name": lambda name, kind, _: (
                        kind != "table" or name in metadata.tables
                    ),
                },
            )
            return list(compare_metadata(context, metadata))
    finally:
        engine.dispose()


def _alembic_config(service_directory: Path, url: str, *arguments: str) -> Config:
    return Config(
        str(service_directory / "alembic.ini"), cmd_opts=Namespace(x=[f"url={url}", *arguments])
    )


def consumed(
    payload: EventPayload,
    *,
    event_id: str | None = None,
    source: str | None = None,
    time: datetime | None = None,
    topic_prefix: str = "",
    offset: int = 0,
) -> ConsumedRecord:
    """A record as the consumer would receive it from the payload's topic (sent at `time`)."""
    # By default from whoever may write the topic (credits, for its ledger), else the tests.
    source = source or topic_of(payload).sole_source or "/tests"
    event = build_event(payload, source=source, event_id=event_id, time=time)
    return ConsumedRecord(
        topic=topic_prefix + topic_of(payload).name,
        partition=0,
        offset=offset,
        key=partition_key(payload),
        value=encode(event),
        headers=record_headers(),
    )


async def outbox_records(database: Database) -> list[ConsumedRecord]:
    """What a service has announced and not yet published, as its consumers will receive it
    (oldest first): feed them to another copy of a service to test a rebuild."""
    async with database.transaction() as db:
        rows = await db.execute(
            select(
                outbox.c.id, outbox.c.topic, outbox.c.key, outbox.c.value, outbox.c.headers
            ).order_by(outbox.c.id)
        )
        # The outbox row id stands in for the offset: unique and increasing, like one.
        return [
            ConsumedRecord(
                topic=row.topic,
                partition=0,
                offset=row.id,
                key=row.key,
                value=row.value,
                headers=[(name, value.encode()) for name, value in row.headers],
            )
            for row in rows
        ]


async def outbox_events(database: Database) -> list[Event[EventPayload]]:
    """What a service has announced and not yet published, oldest first."""
    async with database.transaction() as db:
        values = await db.scalars(select(outbox.c.value).order_by(outbox.c.id))
        return [parse_event(value) for value in values]


class RecordingDeadLetters:
    """Stands in for the dead-letter topic in handler tests: keeps what would be sent."""

    def __init__(self) -> None:
        self.sent: list[tuple[ConsumedRecord, str, str]] = []
        #: How many times letters were handed over (a batch's letters go together).
        self.calls = 0

    async def send(self, record: ConsumedRecord, reason: str, kind: str) -> None:
        self.sent.append((record, reason, kind))

    async def send_all(self, letters: Sequence[Letter]) -> None:
        self.calls += 1
        for record, reason, kind in letters:
            await self.send(record, reason, kind)

    @property
    def reasons(self) -> list[str]:
        return [reason for _, reason, _ in self.sent]

    @property
    def kinds(self) -> list[str]:
        return [kind for _, _, kind in self.sent]


@asynccontextmanager
async def topic_with_dead_letters(kafka_bootstrap: str, *, partitions: int) -> AsyncIterator[str]:
    """A topic of its own, with its `.dlq` twin; deleted afterwards."""
    name = f"test.{uuid.uuid4().hex[:12]}"
    admin = AIOKafkaAdminClient(**client_options(), bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        await admin.create_topics(
            [
                NewTopic(t, num_partitions=partitions, replication_factor=1)
                for t in (name, name + ".dlq")
            ]
        )
        yield name
        await admin.delete_topics([name, name + ".dlq"])
    finally:
        await admin.close()
