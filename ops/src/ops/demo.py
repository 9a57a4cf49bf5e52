"""The spec's Example 1, played through the platform's public interfaces.

A client buys a 10-session package (a `PackagePurchased` event from the store), then over two
weeks logs four solo workouts and has two trainer-led sessions, each booked, started, logged
and completed through the HTTP APIs. The usage and credit charts come from analytics.
Booking refuses a client with nothing available, and hears of the purchase a moment after
credits grants it: the first booking waits for that.

Every call carries the token of whoever makes it in the story: the client logs their solo
workouts and reads their charts; the trainer books, runs and logs the sessions they train.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from aiokafka import AIOKafkaProducer

from contracts.envelope import build_event, encode, partition_key, record_headers, topic_of
from contracts.events import EventPayload, PackagePurchased
from contracts.identity import Role
from servicekit.kafka import client_options

Say = Callable[[str], None]
#: Signs a token for a role and subject (`ops.identity.LocalIdentity.token`).
TokenMint = Callable[[Role, str], str]

TRAINER_ID = 456
WEEK_ONE = datetime(2026, 1, 12, tzinfo=UTC)  # a Monday


@dataclass(frozen=True, slots=True)
class Endpoints:
    tokens: TokenMint
    booking: str
    workouts: str
    credits: str
    analytics: str
    kafka_bootstrap: str
    topic_prefix: str = ""

    def client_for(self, role: Role, subject: int | str) -> httpx.AsyncClient:
        """An HTTP client whose every call carries a token of `subject` in `role`."""
        token = self.tokens(role, str(subject))
        return httpx.AsyncClient(timeout=10, headers={"authorization": f"Bearer {token}"})


@dataclass(frozen=True, slots=True)
class Day:
    offset: int  # days after the first Monday
    label: str
    title: str
    trainer_led: bool


EXAMPLE_ONE = (
    Day(0, "Week 1, Monday", "Chest and triceps", trainer_led=False),
    Day(2, "Week 1, Wednesday", "Personal Training Session", trainer_led=True),
    Day(4, "Week 1, Friday", "Back and biceps", trainer_led=False),
    Day(7, "Week 2, Monday", "Legs", trainer_led=False),
    Day(10, "Week 2, Thursday", "Personal Training Session", trainer_led=True),
    Day(12, "Week 2, Saturday", "Shoulders", trainer_led=False),
)


class DemoFailed(RuntimeError):
    pass


async def play_example_one(
    endpoints: Endpoints, say: Say, *, user_id: int | None = None, within: float = 60.0
) -> int:
    """Play the two weeks for a new client (a new id each run, so runs never mix); return
    the client's id once analytics shows all six workouts and both credits used."""
    client_id = user_id or random.randint(100_000, 2_000_000_000)
    say(f"Client {client_id} buys a 10-session package at the store")
    await buy_package(endpoints, client_id, sessions=10)
    async with (
        endpoints.client_for(Role.CLIENT, client_id) as client,
        endpoints.client_for(Role.TRAINER, TRAINER_ID) as trainer,
    ):
        for day in EXAMPLE_ONE:
            when = WEEK_ONE + timedelta(days=day.offset, hours=10)
            if day.trainer_led:
                session_id = await train_with_trainer(
                    trainer, endpoints, client_id, when, day.title
                )
                say(f"  {day.label}: trainer session {session_id} with trainer {TRAINER_ID}")
            else:
                await log_solo_workout(client, endpoints, client_id, when, day.title)
                say(f"  {day.label}: solo workout, {day.title.lower()}")
        say("Waiting for analytics to count them...")
        await wait_for_usage(client, endpoints, client_id, within=within)
    return client_id


async def buy_package(endpoints: Endpoints, user_id: int, *, sessions: int) -> None:
    purchase = PackagePurchased(
        purchase_id=f"demo-{uuid.uuid4()}",
        user_id=user_id,
        sessions=sessions,
        package_name=f"{sessions}-session package",
        purchased_at=datetime.now(UTC),
    )
    await publish(endpoints, [purchase], source="/platform/store")


async def publish(endpoints: Endpoints, payloads: list[EventPayload], *, source: str) -> None:
    """As another platform service: to each event's contract topic, in order."""
    producer = AIOKafkaProducer(
        **client_options(),
        bootstrap_servers=endpoints.kafka_bootstrap,
        acks="all",
        enable_idempotence=True,
    )
    await producer.start()
    try:
        for payload in payloads:
            await producer.send_and_wait(
                endpoints.topic_prefix + topic_of(payload).name,
                value=encode(build_event(payload, source=source)),
                key=partition_key(payload),
                headers=record_headers(),
            )
    finally:
        await producer.stop()


async def log_solo_workout(
    http: httpx.AsyncClient, endpoints: Endpoints, user_id: int, when: datetime, title: str
) -> None:
    await call(
        http.post(
            f"{endpoints.workouts}/api/workout/sessions",
            json={
                "userId": user_id,
                "title": title,
                "date": when.isoformat(),
                "duration": 45,
                "exercises": [{"name": title, "sets": [{"reps": 10, "weight": 20}] * 3}],
            },
        )
    )


async def train_with_trainer(
    http: httpx.AsyncClient, endpoints: Endpoints, user_id: int, when: datetime, title: str
) -> int:
    """The trainer books a session, starts it, logs its workout and completes it: the
    credit goes once."""
    booking = {"userId": user_id, "trainerId": TRAINER_ID, "sessionDate": when.isoformat()}
    booked = await call_once_arrived(
        lambda: http.post(f"{endpoints.booking}/api/sessions", json=booking),
        not_yet=httpx.codes.CONFLICT,
        within=PURCHASE_ARRIVAL_TIMEOUT,
    )
    session_id = int(booked["id"])
    await call(
        http.patch(f"{endpoints.booking}/api/sessions/{session_id}", json={"status": "in_progress"})
    )
    workout = {
        "userId": user_id,
        "sessionType": "trainer-led",
        "sessionId": session_id,
        "trainerId": TRAINER_ID,
        "title": title,
        "date": when.isoformat(),
        "duration": 60,
        "exercises": [{"name": "Squat", "sets": [{"reps": 8, "weight": 60}] * 4}],
    }
    await call_once_arrived(
        lambda: http.post(f"{endpoints.workouts}/api/workout/sessions", json=workout),
        not_yet=httpx.codes.NOT_FOUND,
        within=SESSION_ARRIVAL_TIMEOUT,
    )
    await call(
        http.patch(f"{endpoints.booking}/api/sessions/{session_id}", json={"status": "completed"})
    )
    return session_id


async def wait_for_usage(
    http: httpx.AsyncClient, endpoints: Endpoints, user_id: int, *, within: float
) -> None:
    """Analytics is eventually consistent: poll until every workout and both credits show."""
    deadline = asyncio.get_running_loop().time() + within
    url = f"{endpoints.analytics}/api/analytics/{user_id}/session-usage"
    while True:
        usage = await call(http.get(url))
        if usage["total"] == len(EXAMPLE_ONE) and usage["credits"]["used"] == 2:
            return
        if asyncio.get_running_loop().time() > deadline:
            raise DemoFailed(f"analytics did not catch up within {within:.0f} s: {usage}")
        await asyncio.sleep(0.2)


async def fetch_charts(endpoints: Endpoints, user_id: int, *, colour: bool = False) -> str:
    """The client's charts, as the client reads them (in the kinds' colours, when asked)."""
    async with endpoints.client_for(Role.CLIENT, user_id) as http:
        response = await http.get(
            f"{endpoints.analytics}/api/analytics/{user_id}/session-usage/chart",
            params={"colour": "true"} if colour else None,
        )
        response.raise_for_status()
        return response.text


#: How long a trainer's app waits for a session booked a moment ago to reach workouts.
SESSION_ARRIVAL_TIMEOUT = 10.0
#: How long it waits for a purchase to reach booking (through credits and its ledger).
PURCHASE_ARRIVAL_TIMEOUT = 30.0


async def call_once_arrived(
    request: Callable[[], Awaitable[httpx.Response]],
    *,
    not_yet: int | Collection[int],
    within: float,
) -> Any:
    """A service learns of what another did from a topic, a moment later, and until then
    refuses with `not_yet`, writing nothing: workouts answers a trainer naming a session it
    has not heard of 404, booking a client whose purchase has not reached it 409. Ask
    again, a while."""
    waiting_on = {not_yet} if isinstance(not_yet, int) else set(not_yet)
    deadline = asyncio.get_running_loop().time() + within
    while True:
        response = await sent(request())
        if response.status_code not in waiting_on or asyncio.get_running_loop().time() > deadline:
            return _answer_of(response)
        await asyncio.sleep(0.1)


async def call(request: Awaitable[httpx.Response]) -> Any:
    return _answer_of(await sent(request))


async def sent(request: Awaitable[httpx.Response]) -> httpx.Response:
    try:
        return await request
    except httpx.TransportError as error:
        raise DemoFailed(f"{error.request.url} did not answer: {error}") from None


def _answer_of(response: httpx.Response) -> Any:
    if response.is_error:
        raise DemoFailed(
            f"{response.request.method} {response.request.url} -> {response.status_code}: "
            f"{response.text}"
        )
    return response.json()
