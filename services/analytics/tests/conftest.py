"""The analytics service on a scratch database of its own: its consumer is fed events directly
(delivery through the broker is proven in test_through_kafka.py), and its API is called
in-process."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime

import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient

from analytics.main import create_app
from analytics.settings import Settings
from contracts.envelope import build_event, encode, partition_key, record_headers, topic_of
from contracts.events import EventPayload
from servicekit.consumer import Outcome
from servicekit.dead_letters import ConsumedRecord
from servicekit.runtime import ServiceRuntime
from servicekit.testing import RecordingDeadLetters

Deliver = Callable[..., Awaitable[Outcome]]


@pytest.fixture
def settings(
    service_database: Callable[[str], str], kafka_bootstrap: str, topic_prefix: str
) -> Settings:
    return Settings(
        database_url=service_database("analytics"),
        kafka_bootstrap_servers=kafka_bootstrap,
        kafka_topic_prefix=topic_prefix,
    )


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    app = create_app(settings)
    yield app
    await app.state.runtime.database.dispose()


@pytest.fixture
def runtime(app: FastAPI) -> ServiceRuntime:
    runtime: ServiceRuntime = app.state.runtime
    return runtime


@pytest.fixture
def dead_letters(runtime: ServiceRuntime) -> RecordingDeadLetters:
    recording = RecordingDeadLetters()
    runtime.consumer.dead_letters = recording
    return recording


@pytest.fixture
async def api(app: FastAPI) -> AsyncIterator[AsyncClient]:
    # The lifespan (Kafka clients) is not started: these tests exercise the API and the store.
    async with AsyncClient(transport=ASGITransport(app=app), base_url="http://analytics") as client:
        yield client


def record_of(
    payload: EventPayload, *, event_id: str | None = None, time: datetime | None = None
) -> ConsumedRecord:
    """A record as the consumer receives it from the payload's topic, sent at `time`."""
    event = build_event(payload, source="/tests", event_id=event_id, time=time)
    return ConsumedRecord(
        topic=topic_of(payload).name,
        partition=0,
        offset=0,
        key=partition_key(payload),
        value=encode(event),
        headers=record_headers(),
    )


@pytest.fixture
def deliver(runtime: ServiceRuntime, dead_letters: RecordingDeadLetters) -> Deliver:
    """Hands an event to the service's consumer as if it came from its topic."""

    async def deliver(
        payload: EventPayload, *, event_id: str | None = None, time: datetime | None = None
    ) -> Outcome:
        return await runtime.consumer.process(record_of(payload, event_id=event_id, time=time))

    return deliver
