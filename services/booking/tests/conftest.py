"""The booking service on a scratch database of its own: its consumer is fed records directly
(delivery itself is proven against the broker in servicekit's tests, the system tests and
test_service.py here), and its API is called in-process."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from sqlalchemy import select

from booking.main import create_app
from booking.settings import Settings
from contracts.events import EventPayload
from servicekit.consumer import Outcome
from servicekit.dead_letters import ConsumedRecord
from servicekit.runtime import ServiceRuntime
from servicekit.tables import outbox
from servicekit.testing import RecordingDeadLetters, consumed

Deliver = Callable[..., Awaitable[Outcome]]
#: Another platform service, as the `source` of the events it publishes.
KIOSK = "/platform/kiosk"


@pytest.fixture
def make_app(
    service_database: Callable[[str], str], kafka_bootstrap: str, topic_prefix: str
) -> Callable[[], FastAPI]:
    """Builds a booking service on a fresh database of its own (two make a rebuild)."""

    def make() -> FastAPI:
        return create_app(
            Settings(
                database_url=service_database("booking"),
                kafka_bootstrap_servers=kafka_bootstrap,
                kafka_topic_prefix=topic_prefix,
            )
        )

    return make


@pytest.fixture
async def app(make_app: Callable[[], FastAPI]) -> AsyncIterator[FastAPI]:
    app = make_app()
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
    async with AsyncClient(transport=ASGITransport(app=app), base_url="http://booking") as client:
        yield client


@pytest.fixture
def deliver(runtime: ServiceRuntime, dead_letters: RecordingDeadLetters) -> Deliver:
    """Hands an event to the service's consumer as if another service had published it."""

    async def deliver(
        payload: EventPayload, *, event_id: str | None = None, source: str = KIOSK
    ) -> Outcome:
        return await runtime.consumer.process(consumed(payload, event_id=event_id, source=source))

    return deliver


async def outbox_records(runtime: ServiceRuntime) -> list[ConsumedRecord]:
    """The service's unpublished events, byte for byte as its consumer will read them back
    from the topic, oldest first."""
    async with runtime.database.sessions() as session:
        rows = (
            await session.execute(
                select(
                    outbox.c.id, outbox.c.topic, outbox.c.key, outbox.c.value, outbox.c.headers
                ).order_by(outbox.c.id)
            )
        ).all()
    return [
        ConsumedRecord(
            topic=row.topic,
            partition=0,
            offset=row.id,
            key=row.key,
            value=row.value,
            headers=[(str(name), str(value).encode()) for name, value in row.headers],
        )
        for row in rows
    ]
