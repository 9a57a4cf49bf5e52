"""The booking service wired to a real broker: its API's events reach `booking.sessions`,
and what other services publish there and on `credits.ledger` reaches its store."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from httpx import ASGITransport, AsyncClient

from booking.main import create_app
from booking.settings import Settings
from contracts.envelope import build_event, encode, parse_event, partition_key, record_headers
from contracts.events import (
    Balance,
    EventPayload,
    SessionBooked,
    SessionCancelled,
    SessionCompleted,
    SessionCreditDeducted,
)
from contracts.topics import BOOKING_SESSIONS, CREDITS_LEDGER, Topic
from ops.local.topics import create_topics
from servicekit.kafka import client_options
from testkit.helpers import eventually, read_topic

from .conftest import KIOSK

pytestmark = pytest.mark.infra

CLIENT, TRAINER = 123, 456
DATE = datetime(2026, 1, 15, 10, tzinfo=UTC)


@pytest.fixture
async def topics(kafka_bootstrap: str, topic_prefix: str) -> AsyncIterator[list[Topic]]:
    """Booking's topics and their dead-letter twins, behind this test's prefix."""
    mine = [
        t.with_prefix(topic_prefix)
        for topic in (BOOKING_SESSIONS, CREDITS_LEDGER)
        for t in (topic, topic.dead_letter)
    ]
    await create_topics(kafka_bootstrap, mine)
    yield mine
    admin = AIOKafkaAdminClient(**client_options(), bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        await admin.delete_topics([t.name for t in mine])
    finally:
        await admin.close()


@pytest.fixture
async def api(
    service_database: Callable[[str], str],
    kafka_bootstrap: str,
    topic_prefix: str,
    topics: list[Topic],
    staff_headers: dict[str, str],
) -> AsyncIterator[AsyncClient]:
    """The whole service, Kafka clients started, served in-process."""
    app = create_app(
        Settings(
            database_url=service_database("booking"),
            kafka_bootstrap_servers=kafka_bootstrap,
            kafka_topic_prefix=topic_prefix,
            consumer_group=topic_prefix + "booking",
        )
    )
    async with (
        app.router.lifespan_context(app),
        AsyncClient(
            transport=ASGITransport(app=app), base_url="http://booking", headers=staff_headers
        ) as client,
    ):

        async def ready() -> bool:
            return (await client.get("/health/ready")).status_code == 200

        await eventually(ready, within=60)
        yield client


@pytest.fixture
async def producer(kafka_bootstrap: str) -> AsyncIterator[AIOKafkaProducer]:
    producer = AIOKafkaProducer(**client_options(), bootstrap_servers=kafka_bootstrap)
    await producer.start()
    yield producer
    await producer.stop()


async def publish(producer: AIOKafkaProducer, topic: Topic, payload: EventPayload) -> None:
    """Publish as another platform service would (and the ledger's events as credits)."""
    await producer.send_and_wait(
        topic.name,
        value=encode(build_event(payload, source=topic.sole_source or KIOSK)),
        key=partition_key(payload),
        headers=record_headers(),
    )


async def test_a_booking_made_through_the_api_is_published_keyed_by_its_session(
    api: AsyncClient, kafka_bootstrap: str, topics: list[Topic]
) -> None:
    body = {"userId": CLIENT, "trainerId": TRAINER, "sessionDate": "2026-01-15T10:00:00Z"}
    session = (await api.post("/api/sessions", json=body)).json()
    [record] = await read_topic(kafka_bootstrap, topics[0].name, until=lambda found: bool(found))
    assert record.key == str(session["id"]).encode()
    event = parse_event(record.value)
    assert isinstance(event.payload, SessionBooked)
    assert (event.payload.session_id, event.payload.user_id) == (session["id"], CLIENT)


async def test_other_services_bookings_and_the_ledger_reach_the_store(
    api: AsyncClient, producer: AIOKafkaProducer, kafka_bootstrap: str, topics: list[Topic]
) -> None:
    sessions, sessions_dlq, ledger, _ = topics
    await publish(
        producer,
        ledger,
        SessionCreditDeducted(
            user_id=CLIENT,
            session_id=60,
            trainer_id=TRAINER,
            cause="session-completed",
            balance=Balance(total=1, used=1, remaining=0),
        ),
    )
    await publish(
        producer,
        sessions,
        SessionBooked(session_id=60, user_id=CLIENT, trainer_id=TRAINER, session_date=DATE),
    )

    async def landed_and_deducted() -> bool:
        response = await api.get("/api/sessions/60")
        return response.status_code == 200 and response.json()["sessionDeducted"] is True

    await eventually(landed_and_deducted)
    # The API's next booking takes an id past the one another service chose.
    body = {"userId": CLIENT, "trainerId": TRAINER, "sessionDate": "2026-01-16T10:00:00Z"}
    assert (await api.post("/api/sessions", json=body)).json()["id"] == 61

    for change in (SessionCompleted, SessionCancelled):
        await publish(
            producer, sessions, change(session_id=61, user_id=CLIENT, trainer_id=TRAINER, at=DATE)
        )
    [dead] = await read_topic(kafka_bootstrap, sessions_dlq.name, until=lambda found: bool(found))
    assert (
        dict(dead.headers)["dlq-reason"]
        .decode()
        .startswith("session 61 is completed, which is final")
    )
    assert (await api.get("/api/sessions/61")).json()["status"] == "completed"
