"""A small service for the delivery tests: it counts the PackagePurchased events it applies,
in a table of a scratch database, consuming a scratch topic."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any, ClassVar

import pytest
from aiokafka import AIOKafkaProducer
from sqlalchemy import text

from contracts.envelope import build_event, encode, record_headers
from contracts.events import PackagePurchased
from contracts.services import CREDITS, Service
from contracts.topics import Topic
from servicekit.db import Database
from servicekit.kafka import client_options
from servicekit.outbox import Outbox
from servicekit.runtime import ServiceRuntime
from servicekit.settings import ServiceSettings, settings_config
from servicekit.tables import plumbing_metadata
from testkit.probe import CREATE_APPLIED, BeforeWrite, Decide, ProbeStore, probe_handlers


class ProbeSettings(ServiceSettings):
    model_config = settings_config(CREDITS)
    service: ClassVar[Service] = CREDITS


async def create_tables(url: str) -> None:
    database = Database(url)
    async with database.engine.begin() as connection:
        await connection.run_sync(plumbing_metadata.create_all)
        await connection.execute(text(CREATE_APPLIED))
    await database.dispose()


def purchase(user_id: int = 1, purchase_id: str | None = None) -> PackagePurchased:
    return PackagePurchased(
        purchase_id=purchase_id or uuid.uuid4().hex,
        user_id=user_id,
        sessions=10,
        purchased_at=datetime.now(UTC),
    )


def purchase_record(event_id: str | None = None, **kwargs: Any) -> bytes:
    return encode(build_event(purchase(**kwargs), source="/test/store", event_id=event_id))


RuntimeFactory = Callable[..., ServiceRuntime]


@pytest.fixture
async def database_url(scratch_database_url: str) -> str:
    await create_tables(scratch_database_url)
    return scratch_database_url


@pytest.fixture
async def make_runtime(
    kafka_bootstrap: str, database_url: str, scratch_topic: str
) -> AsyncIterator[RuntimeFactory]:
    """Builds probe services on the scratch topic; all are stopped at the end of the test."""
    started: list[ServiceRuntime] = []
    group = f"probe-{uuid.uuid4().hex[:8]}"

    def make(
        decide: Decide | None = None,
        *,
        before_write: BeforeWrite | None = None,
        outbox: Outbox | None = None,
        graceful_timeout: float = 10.0,
    ) -> ServiceRuntime:
        settings = ProbeSettings(
            kafka_bootstrap_servers=kafka_bootstrap,
            database_url=database_url,
            consumer_group=group,
        )
        runtime = ServiceRuntime(settings, graceful_timeout=graceful_timeout)
        runtime.consumer.handle(ProbeStore(before_write, outbox), probe_handlers(decide))
        runtime.subscribe(
            Topic(name=scratch_topic, key="userId", event_types=("PackagePurchased",))
        )
        started.append(runtime)
        return runtime

    yield make
    for runtime in started:
        await runtime.stop()


@pytest.fixture
async def producer(kafka_bootstrap: str) -> AsyncIterator[AIOKafkaProducer]:
    producer = AIOKafkaProducer(**client_options(), bootstrap_servers=kafka_bootstrap, acks="all")
    await producer.start()
    yield producer
    await producer.stop()


async def send(producer: AIOKafkaProducer, topic: str, value: bytes, key: bytes = b"1") -> None:
    await producer.send_and_wait(topic, value=value, key=key, partition=0, headers=record_headers())
