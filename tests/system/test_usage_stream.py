"""The usage stream, `GET /api/analytics/{userId}/session-usage/events`, from real processes:
the usage at once, then each change (one logged through the workouts API, and one applied by
another replica of analytics on the same database), the usage endpoint's doors, Last-Event-ID,
and no stream, listener or shutdown left hanging.

The world: client C trains with trainer T (a trainer-led workout named them together); trainer
U trains nobody; client D is someone else."""

from __future__ import annotations

import asyncio
import json
import signal
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import httpx
import psycopg
import pytest
from prometheus_client.parser import text_string_to_metric_families

from analytics.main import create_app
from analytics.settings import Settings
from analytics.store import USAGE_CHANGED
from contracts.events import WorkoutLogged
from contracts.identity import Role
from contracts.services import Service
from ops.identity import LocalIdentity
from servicekit.consumer import Outcome
from servicekit.db import libpq_url
from servicekit.event_stream import StreamMessage, stream_messages
from servicekit.runtime import ServiceRuntime
from testkit.helpers import consumed, eventually

from .conftest import Launch
from .platform import IsolatedPlatform

pytestmark = pytest.mark.infra

C, D = 3001, 3002
T, U = 4001, 4002
#: Long enough for any wait of these tests: none of them is timed.
PATIENCE = 30.0


class NotifiedOnly(IsolatedPlatform):
    """Analytics without its safety net (a stream reads usage again once an hour unless
    notified): a change that reaches a stream here was announced by its notification."""

    def environment(self, service: Service, port: int) -> dict[str, str]:
        env = super().environment(service, port)
        env["ANALYTICS_USAGE_STREAM_REREAD_SECONDS"] = "3600"
        return env


@pytest.fixture(scope="module")
async def platform(module_launch: Launch) -> AsyncIterator[IsolatedPlatform]:
    """Workouts (to log workouts through its API) and analytics, as processes; C has a
    solo and a trainer-led workout with T."""
    async with module_launch(services=["workouts", "analytics"], kind=NotifiedOnly) as started:
        await log_workout(started, C)
        await log_workout(started, C, trainer=T)
        await eventually(lambda: usage_total_is(started, C, 2), within=PATIENCE)
        yield started


async def log_workout(
    platform: IsolatedPlatform, client: int, *, trainer: int | None = None
) -> None:
    """A completed workout, logged by staff: solo, or trainer-led with `trainer`."""
    body: dict[str, Any] = {"userId": client, "title": "Workout", "status": "completed"}
    if trainer is not None:
        body |= {"sessionType": "trainer-led", "sessionId": 700_000 + client, "trainerId": trainer}
    async with platform.http() as staff:
        response = await staff.post(f"{platform.url('workouts')}/api/workout/sessions", json=body)
    assert response.status_code == 201, response.text


async def usage(platform: IsolatedPlatform, client: int) -> dict[str, Any]:
    async with platform.http() as staff:
        response = await staff.get(usage_url(platform, client))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def usage_total_is(platform: IsolatedPlatform, client: int, total: int) -> bool:
    return bool((await usage(platform, client))["total"] == total)


def usage_url(platform: IsolatedPlatform, client: int | str, replica: int = 0) -> str:
    return f"{platform.processes['analytics'][replica].url}/api/analytics/{client}/session-usage"


def token(platform: IsolatedPlatform, role: Role, subject: int | str) -> str:
    return platform.tokens(role, str(subject))


@asynccontextmanager
async def stream(
    url: str, bearer: str | None, *, last_event_id: str | None = None
) -> AsyncIterator[tuple[httpx.Response, AsyncIterator[StreamMessage]]]:
    """An open event stream: its response (status and headers) and its messages."""
    headers = {"accept": "text/event-stream"}
    if bearer is not None:
        headers["authorization"] = f"Bearer {bearer}"
    if last_event_id is not None:
        headers["last-event-id"] = last_event_id
    async with (
        httpx.AsyncClient(timeout=httpx.Timeout(10, read=PATIENCE)) as http,
        http.stream("GET", url + "/events", headers=headers) as response,
    ):
        yield response, stream_messages(response.aiter_lines())


async def next_message(messages: AsyncIterator[StreamMessage]) -> StreamMessage:
    async with asyncio.timeout(PATIENCE):
        return await anext(messages)


async def next_usage(messages: AsyncIterator[StreamMessage]) -> StreamMessage:
    """The next usage event, past keep-alive comments."""
    while not (message := await next_message(messages)).is_event:
        pass
    return message


def usage_in(message: StreamMessage) -> dict[str, Any]:
    assert message.event == "usage", message
    assert message.data is not None
    body: dict[str, Any] = json.loads(message.data)
    return body


# --- the usage at once, then each change ---------------------------------------------------


async def test_the_stream_sends_the_usage_at_once_then_each_change(
    platform: IsolatedPlatform,
) -> None:
    before = await usage(platform, C)
    bearer = token(platform, Role.CLIENT, C)
    async with stream(usage_url(platform, C), bearer) as (response, events):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["cache-control"] == "no-cache"
        first = await next_message(events)
        assert usage_in(first) == before
        assert first.id
        assert first.retry is not None
        assert first.retry > 0

        await log_workout(platform, C)
        changed = await next_usage(events)

    assert usage_in(changed) == await usage(platform, C)
    assert usage_in(changed)["total"] == before["total"] + 1
    assert changed.id != first.id
    assert changed.retry is None, "the retry hint is given once"


async def test_a_change_applied_by_another_replica_reaches_the_stream(
    platform: IsolatedPlatform, kafka_bootstrap: str
) -> None:
    """Another analytics process on the same database (this test's own, never started:
    its consumer is handed the event) changes D's usage; the running process streams it."""
    other = create_app(
        Settings(
            database_url=platform.database_urls["analytics"],
            kafka_bootstrap_servers=kafka_bootstrap,
            kafka_topic_prefix=platform.topic_prefix,
        )
    )
    replica: ServiceRuntime = other.state.runtime
    workout = WorkoutLogged(
        workout_id=uuid.uuid4(), user_id=D, title="Run", date=datetime.now(UTC), status="completed"
    )
    try:
        staff = token(platform, Role.STAFF, "desk")
        async with stream(usage_url(platform, D), staff) as (_, events):
            assert usage_in(await next_usage(events))["total"] == 0
            record = consumed(workout, topic_prefix=platform.topic_prefix)

            assert await replica.consumer.process(record) is Outcome.APPLIED
            changed = usage_in(await next_usage(events))
    finally:
        await replica.database.dispose()

    assert changed["total"] == changed["solo"]["count"] == 1


# --- the usage endpoint's doors --------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "subject", "expected"),
    [
        (None, None, 401),
        (Role.CLIENT, C, 200),
        (Role.CLIENT, D, 403),
        (Role.TRAINER, T, 200),
        (Role.TRAINER, U, 403),
        (Role.STAFF, "desk", 200),
        (Role.SERVICE, "kiosk", 200),
    ],
    ids=[
        "no token",
        "the client",
        "another client",
        "their trainer",
        "another trainer",
        "staff",
        "a service",
    ],
)
async def test_the_stream_is_open_to_whoever_may_read_the_usage_and_no_one_else(
    platform: IsolatedPlatform, role: Role | None, subject: int | str | None, expected: int
) -> None:
    bearer = None if role is None else token(platform, role, str(subject))
    async with stream(usage_url(platform, C), bearer) as (response, events):
        assert response.status_code == expected
        if expected == 200:
            assert usage_in(await next_usage(events)) == await usage(platform, C)
            return
        refusal = json.loads(await response.aread())
    if expected == 401:
        assert response.headers["www-authenticate"] == "Bearer"
    assert refusal["detail"]


@pytest.mark.parametrize("user", ["abc", "1.5", "0", "-3", str(2**63)])
async def test_a_user_id_that_is_no_id_is_a_422(platform: IsolatedPlatform, user: str) -> None:
    staff = token(platform, Role.STAFF, "desk")
    async with stream(usage_url(platform, user), staff) as (response, _):
        assert response.status_code == 422
        assert json.loads(await response.aread())["detail"]


async def test_a_stream_ends_when_its_token_expires(
    platform: IsolatedPlatform, identity: LocalIdentity
) -> None:
    short = identity.token(Role.CLIENT, str(C), ttl=2)
    async with stream(usage_url(platform, C), short) as (response, events):
        assert response.status_code == 200
        received = [message async for message in events]

    assert received[0].is_event
    assert received[-1].comments == ["the bearer token has expired"]


# --- Last-Event-ID ---------------------------------------------------------------------------


async def test_a_reconnect_naming_the_current_usage_gets_no_repeat_of_it(
    platform: IsolatedPlatform,
) -> None:
    bearer = token(platform, Role.CLIENT, C)
    async with stream(usage_url(platform, C), bearer) as (_, events):
        current = await next_usage(events)

    async with stream(usage_url(platform, C), bearer, last_event_id=current.id) as (_, events):
        first = await next_message(events)
        assert not first.is_event
        assert first.retry is not None
        await log_workout(platform, C)
        changed = await next_usage(events)
    assert usage_in(changed)["total"] == usage_in(current)["total"] + 1

    async with stream(usage_url(platform, C), bearer, last_event_id="elsewhere") as (_, events):
        assert usage_in(await next_message(events)) == usage_in(changed)


# --- nothing left hanging ----------------------------------------------------------------------


async def open_streams(url: str) -> float:
    async with httpx.AsyncClient(timeout=10) as http:
        response = await http.get(f"{url}/metrics")
    response.raise_for_status()
    for family in text_string_to_metric_families(response.text):
        if family.name == "analytics_usage_streams_open":
            return float(family.samples[0].value)
    raise AssertionError("analytics_usage_streams_open is not served")


def listeners(platform: IsolatedPlatform) -> int:
    """Connections listening for usage changes on analytics' database (the service's own
    role sees what its sessions run)."""
    with psycopg.connect(libpq_url(platform.database_urls["analytics"])) as connection:
        row = connection.execute(
            "select count(*) from pg_stat_activity"
            " where datname = current_database() and query = %s",
            (f"LISTEN {USAGE_CHANGED}",),
        ).fetchone()
    return int(row[0]) if row else 0


async def test_a_client_that_goes_away_frees_its_stream_and_the_last_one_the_listener(
    platform: IsolatedPlatform,
) -> None:
    analytics = platform.url("analytics")
    bearer = token(platform, Role.CLIENT, C)
    async with stream(usage_url(platform, C), bearer) as (_, first):
        await next_usage(first)
        async with stream(usage_url(platform, C), bearer) as (_, second):
            await next_usage(second)
            assert await open_streams(analytics) == 2
            await eventually(lambda: listeners(platform) == 1, within=PATIENCE)
        await eventually(lambda: _streams_are(analytics, 1), within=PATIENCE)
        assert listeners(platform) == 1

    await eventually(lambda: _streams_are(analytics, 0), within=PATIENCE)
    await eventually(lambda: listeners(platform) == 0, within=PATIENCE)


async def _streams_are(url: str, count: int) -> bool:
    return await open_streams(url) == count


async def test_a_replica_stops_with_streams_open_and_ends_them(
    platform: IsolatedPlatform,
) -> None:
    """SIGTERM ends the streams rather than waiting for the graceful shutdown's timeout."""
    replica = await platform.start("analytics")
    async with stream(
        f"{replica.url}/api/analytics/{C}/session-usage", token(platform, Role.CLIENT, C)
    ) as (_, events):
        await next_usage(events)

        await asyncio.to_thread(platform.kill, "analytics", 1, signal.SIGTERM)

        async with asyncio.timeout(PATIENCE):
            rest = [message async for message in events]
    assert not any(message.is_event for message in rest)
    log = await asyncio.to_thread(replica.log.read_text)
    assert "graceful shutdown exceeded" not in log
    assert "Traceback" not in log
