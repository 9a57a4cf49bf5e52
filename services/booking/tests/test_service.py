"""The booking service wired to a real broker: its API's events reach `booking.sessions`,
and what other services publish there and on `credits.ledger` reaches its store."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from httpx import ASGITransport, AsyncClient

from booking.main import create_app
from booking.settings import Settings
from contracts.envelope import build_event, encode, parse_event, partition_key, record_headers
from contracts.events import (
    Balance,
    CancellationPolicy,
    CreditsGranted,
    EventPayload,
    SessionBooked,
    SessionCancelled,
    SessionCompleted,
    SessionCreditDeducted,
)
from contracts.identity import Role
from contracts.topics import BOOKING_SESSIONS, CREDITS_LEDGER, Topic
from ops.identity import LocalIdentity
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


#: Starts the whole service, Kafka clients started, with these settings besides the test's.
Serve = Callable[..., contextlib.AbstractAsyncContextManager[AsyncClient]]


@pytest.fixture
def serve(
    service_database: Callable[[str], str],
    kafka_bootstrap: str,
    topic_prefix: str,
    topics: list[Topic],
    staff_headers: dict[str, str],
) -> Serve:
    """The whole service, served in-process once ready, called by staff."""

    @contextlib.asynccontextmanager
    async def serving(**settings: Any) -> AsyncIterator[AsyncClient]:
        app = create_app(
            Settings(
                database_url=service_database("booking"),
                kafka_bootstrap_servers=kafka_bootstrap,
                kafka_topic_prefix=topic_prefix,
                consumer_group=topic_prefix + "booking",
                **settings,
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

    return serving


@pytest.fixture
async def api(serve: Serve) -> AsyncIterator[AsyncClient]:
    """The service with the default settings: a studio without a cancellation policy."""
    async with serve() as client:
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


#: Staff booking for a client whose credits are not the point.
BOOKING = {
    "userId": CLIENT,
    "trainerId": TRAINER,
    "sessionDate": "2026-01-15T10:00:00Z",
    "allowWithoutCredit": True,
}


async def published_booking(kafka_bootstrap: str, topic: Topic) -> tuple[bytes, SessionBooked]:
    """The one booking on the topic, as it travelled: its key and payload."""
    [record] = await read_topic(kafka_bootstrap, topic.name, until=lambda found: bool(found))
    payload = parse_event(record.value).payload
    assert isinstance(payload, SessionBooked)
    return record.key, payload


async def test_a_booking_made_through_the_api_is_published_keyed_by_its_session(
    api: AsyncClient, kafka_bootstrap: str, topics: list[Topic]
) -> None:
    session = (await api.post("/api/sessions", json=BOOKING)).json()
    key, booked = await published_booking(kafka_bootstrap, topics[0])
    assert key == str(session["id"]).encode()
    assert (booked.session_id, booked.user_id) == (session["id"], CLIENT)
    # A studio that sets no policy forfeits nothing: the booking carries none.
    assert booked.policy is None


@pytest.mark.parametrize(
    ("settings", "policy"),
    [
        pytest.param(
            {"studio_late_cancel_hours": 24, "studio_no_show_forfeits": True},
            CancellationPolicy(late_cancel_hours=24, no_show_forfeits=True),
            id="late cancels and no-shows",
        ),
        pytest.param(
            {"studio_late_cancel_hours": 12},
            CancellationPolicy(late_cancel_hours=12, no_show_forfeits=False),
            id="late cancels only",
        ),
        pytest.param(
            {"studio_no_show_forfeits": True},
            CancellationPolicy(late_cancel_hours=0, no_show_forfeits=True),
            id="no-shows only",
        ),
        pytest.param({"studio_late_cancel_hours": 0}, None, id="none that forfeits"),
    ],
)
async def test_the_studio_policy_in_force_is_stamped_on_each_published_booking(
    serve: Serve,
    kafka_bootstrap: str,
    topics: list[Topic],
    settings: dict[str, Any],
    policy: CancellationPolicy | None,
) -> None:
    async with serve(**settings) as api:
        assert (await api.post("/api/sessions", json=BOOKING)).status_code == 201
        # Read while the service runs: its outbox relay publishes the booking.
        _, booked = await published_booking(kafka_bootstrap, topics[0])
    assert booked.policy == policy


async def test_a_purchase_announced_on_the_ledger_lets_the_client_book(
    api: AsyncClient,
    producer: AIOKafkaProducer,
    topics: list[Topic],
    identity: LocalIdentity,
) -> None:
    """Booking learns of credits from the ledger, a moment after credits grants them: the
    client's booking is refused until then, and the app tries again (nothing is written
    by a refusal)."""
    client = {"authorization": f"Bearer {identity.token(Role.CLIENT, str(CLIENT))}"}
    body = {"userId": CLIENT, "trainerId": TRAINER, "sessionDate": "2026-01-15T10:00:00Z"}
    refused = await api.post("/api/sessions", json=body, headers=client)
    assert refused.status_code == 409, refused.text
    assert refused.json()["detail"].startswith(
        f"client {CLIENT} has no session credits available (available 0)"
    )

    await publish(
        producer,
        topics[2],
        CreditsGranted(user_id=CLIENT, amount=2, balance=Balance(total=2, used=0, remaining=2)),
    )
    answers: list[int] = []

    async def booked() -> bool:
        response = await api.post("/api/sessions", json=body, headers=client)
        answers.append(response.status_code)
        return response.status_code == 201

    await eventually(booked)
    assert set(answers[:-1]) <= {409}
    assert answers[-1] == 201
    assert len((await api.get(f"/api/sessions?userId={CLIENT}")).json()) == 1


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
    body = {
        "userId": CLIENT,
        "trainerId": TRAINER,
        "sessionDate": "2026-01-16T10:00:00Z",
        "allowWithoutCredit": True,
    }
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
