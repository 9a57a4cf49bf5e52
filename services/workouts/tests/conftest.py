"""The workouts service on a scratch database of its own: its consumer is fed events directly
(delivery itself is proven against the broker in servicekit's tests and the system tests),
and its API is called in-process."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient

from contracts.events import EventPayload
from servicekit.consumer import Outcome
from servicekit.runtime import ServiceRuntime
from servicekit.testing import RecordingDeadLetters, consumed
from workouts.main import create_app
from workouts.settings import Settings

Deliver = Callable[..., Awaitable[Outcome]]


@pytest.fixture
async def app(
    service_database: Callable[[str], str], kafka_bootstrap: str, topic_prefix: str
) -> AsyncIterator[FastAPI]:
    settings = Settings(
        database_url=service_database("workouts"),
        kafka_bootstrap_servers=kafka_bootstrap,
        kafka_topic_prefix=topic_prefix,
    )
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
    # The lifespan (Kafka clients) is not started: these tests exercise the API and the store,
    # and what the service announces stays in its outbox for them to read.
    async with AsyncClient(transport=ASGITransport(app=app), base_url="http://workouts") as client:
        yield client


@pytest.fixture
def deliver(runtime: ServiceRuntime, dead_letters: RecordingDeadLetters) -> Deliver:
    """Hands an event to the service's consumer as if it came from its topic."""

    async def deliver(payload: EventPayload, *, event_id: str | None = None) -> Outcome:
        return await runtime.consumer.process(consumed(payload, event_id=event_id))

    return deliver
