"""A platform's history with every kind of trouble, played through the public interfaces:
the services' HTTP APIs, and the contract topics where other platform services publish.

Per client:
- a package bought at the store, one client in three buying a second; a few purchases sent
  twice as the same record, and a few as the same purchase under a new event id;
- every fourth client granted credits by staff through the credits API (those exist only on
  `credits.ledger`, which a rebuild of credits must read back);
- two sessions through the booking API: started, the trainer-led workout logged through the
  workouts API, then completed; every fifth client's second session cancelled instead;
- three sessions booked by another platform service straight onto `booking.sessions`: one
  delivered (its workout logged by another app, then started and completed), one
  cancelled, one a no-show; bookings sent twice as the same record, completions again
  under a new event id;
- solo workouts through the API and from another app, one sent again under a new event id;
  a planned workout completed later through the API.
And poison for every consumer: records that are not JSON, JSON that is not a CloudEvent,
events that break the schema, a session id reused for another client, a reschedule of a
session never booked, a start after a completion.

Every delivered session has both causes of its deduction (its trainer-led workout, and its
completion), as in real life: which one deducts first depends on how
`workouts.workout-sessions` and `booking.sessions` interleave, and a rebuild of credits must
still record the cause it announced (it reads its own ledger topic first).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Awaitable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from contracts.envelope import build_event, encode, partition_key, topic_of
from contracts.events import (
    EventPayload,
    Exercise,
    ExerciseSet,
    PackagePurchased,
    SessionBooked,
    SessionCancelled,
    SessionCompleted,
    SessionNoShow,
    SessionRescheduled,
    SessionStarted,
    WorkoutLogged,
)
from contracts.topics import BOOKING_SESSIONS, COMMERCE_PACKAGES, WORKOUT_SESSIONS

from .platform import IsolatedPlatform

BASE = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # a Monday
FIRST_CLIENT = 70_000
TRAINERS = (801, 802, 803)
#: Ids for sessions booked by other platform services, far from the API's own sequence.
OTHER_SERVICES_SESSIONS = 5_000_000


@dataclass
class History:
    """What was played, for the tests to check against."""

    clients: list[int] = field(default_factory=list)
    #: Records sent straight to the topics (the services' own events come on top).
    published: int = 0
    http_calls: int = 0
    poison: int = 0


def client_ids(count: int) -> list[int]:
    return [FIRST_CLIENT + n for n in range(count)]


def _exercises(seed: int) -> list[Exercise]:
    return [
        Exercise(
            name=f"Exercise {seed % 7}",
            sets=[ExerciseSet(reps=8 + seed % 5, weight=20.0 + seed % 30) for _ in range(3)],
        )
    ]


class Player:
    def __init__(self, platform: IsolatedPlatform, http: httpx.AsyncClient) -> None:
        self.platform = platform
        self.http = http
        self.history = History()
        self._limit = asyncio.Semaphore(6)

    # --- the two ways in ------------------------------------------------------------------

    async def publish(self, *payloads: EventPayload, source: str = "/platform/other") -> None:
        await self.platform.publish(list(payloads), source=source)
        self.history.published += len(payloads)

    async def publish_twice(self, payload: EventPayload, source: str = "/platform/other") -> None:
        """The same record twice: same bytes, same event id (a producer's retry)."""
        event = build_event(payload, source=source)
        for _ in range(2):
            await self.publish_record(topic_of(payload).name, encode(event), partition_key(payload))

    async def publish_record(self, topic: str, value: bytes, key: bytes) -> None:
        await self.platform.publish_raw(topic, value, key=key)
        self.history.published += 1

    async def call(self, request: Awaitable[httpx.Response]) -> Any:
        async with self._limit:
            response = await request
        self.history.http_calls += 1
        failure = f"{response.request.url}: {response.status_code} {response.text}"
        assert response.is_success, failure
        return response.json()

    # --- one client's weeks -----------------------------------------------------------------

    async def client(self, index: int, user_id: int) -> None:
        trainer = TRAINERS[index % len(TRAINERS)]
        await self.purchases(index, user_id)
        if index % 4 == 0:
            await self.staff_grant(user_id)
        for number in range(2):
            cancelled = index % 5 == 0 and number == 1
            await self.session_through_the_apis(user_id, trainer, index * 10 + number, cancelled)
        await self.sessions_of_other_services(index, user_id, trainer)
        await self.solo_workouts(index, user_id)

    async def purchases(self, index: int, user_id: int) -> None:
        purchase = PackagePurchased(
            purchase_id=f"order-{user_id}-1",
            user_id=user_id,
            sessions=10,
            package_name="10-session package",
            purchased_at=BASE,
        )
        if index % 5 == 1:
            await self.publish_twice(purchase, source="/platform/store")
        else:
            await self.publish(purchase, source="/platform/store")
        if index % 7 == 2:
            await self.publish(purchase, source="/platform/store")  # a new event id
        if index % 3 == 0:
            second = purchase.model_copy(update={"purchase_id": f"order-{user_id}-2"})
            await self.publish(second, source="/platform/store")

    async def staff_grant(self, user_id: int) -> None:
        await self.call(
            self.http.post(
                f"{self.platform.url('credits')}/api/credits/{user_id}/grants",
                json={"sessions": 2, "reason": "goodwill"},
                headers={"Idempotency-Key": f"ticket-{user_id}"},
            )
        )

    async def session_through_the_apis(
        self, user_id: int, trainer: int, seed: int, cancelled: bool
    ) -> None:
        booking = self.platform.url("booking")
        when = BASE + timedelta(days=seed % 20, hours=seed % 8)
        booked = await self.call(
            self.http.post(
                f"{booking}/api/sessions",
                json={
                    "userId": user_id,
                    "trainerId": trainer,
                    "sessionDate": when.isoformat(),
                    # Staff, whatever booking has heard of the client's credits by then: the
                    # history is the same however fast the ledger travels.
                    "allowWithoutCredit": True,
                },
            )
        )
        session = f"{booking}/api/sessions/{booked['id']}"
        if cancelled:
            await self.call(self.http.patch(session, json={"status": "cancelled", "reason": "ill"}))
            return
        await self.call(self.http.patch(session, json={"status": "in_progress"}))
        await self.call(
            self.http.post(
                f"{self.platform.url('workouts')}/api/workout/sessions",
                json={
                    "userId": user_id,
                    "sessionType": "trainer-led",
                    "sessionId": booked["id"],
                    "trainerId": trainer,
                    "title": "Personal Training Session",
                    "date": when.isoformat(),
                    "duration": 60,
                    "exercises": [e.model_dump(mode="json") for e in _exercises(seed)],
                },
            )
        )
        await self.call(self.http.patch(session, json={"status": "completed"}))

    async def sessions_of_other_services(self, index: int, user_id: int, trainer: int) -> None:
        # Far apart: booking moves its API's sequence past each id it learns of, and the API
        # must not hand out, meanwhile, an id that another service has chosen but booking has
        # not read yet (the three arrive on different partitions, in any order).
        first = OTHER_SERVICES_SESSIONS + index * 1000
        when = BASE + timedelta(days=index % 14, hours=14)
        delivered, cancelled, missed = first, first + 300, first + 600
        for session_id in (delivered, cancelled, missed):
            booked = SessionBooked(
                session_id=session_id,
                user_id=user_id,
                trainer_id=trainer,
                session_date=when,
                location="Studio 2",
            )
            if index % 4 == 1:
                await self.publish_twice(booked)
            else:
                await self.publish(booked)
        moved = {"user_id": user_id, "trainer_id": trainer, "at": when}
        await self.publish(
            WorkoutLogged(
                workout_id=uuid.uuid5(uuid.NAMESPACE_URL, f"session-workout-{delivered}"),
                user_id=user_id,
                session_type="trainer-led",
                session_id=delivered,
                trainer_id=trainer,
                title="Personal Training Session",
                date=when,
                status="completed",
            )
        )
        await self.publish(
            SessionStarted(session_id=delivered, **moved),
            SessionCompleted(session_id=delivered, **moved),
            SessionCancelled(session_id=cancelled, reason="trainer ill", **moved),
            SessionNoShow(session_id=missed, **moved),
        )
        if index % 6 == 3:
            # The same completion announced again by another service, under a new id.
            await self.publish(SessionCompleted(session_id=delivered, **moved))

    async def solo_workouts(self, index: int, user_id: int) -> None:
        workouts = self.platform.url("workouts")
        when = BASE + timedelta(days=index % 10, hours=7)
        for n in range(2):
            await self.call(
                self.http.post(
                    f"{workouts}/api/workout/sessions",
                    json={
                        "userId": user_id,
                        "title": f"Solo {n}",
                        "date": (when + timedelta(days=n)).isoformat(),
                        "duration": 45,
                        "exercises": [e.model_dump(mode="json") for e in _exercises(index + n)],
                    },
                )
            )
        planned = await self.call(
            self.http.post(
                f"{workouts}/api/workout/sessions",
                json={
                    "userId": user_id,
                    "title": "Run",
                    "status": "planned",
                    "date": (when + timedelta(days=3)).isoformat(),
                },
            )
        )
        await self.call(
            self.http.patch(
                f"{workouts}/api/workout/sessions/{planned['id']}", json={"status": "completed"}
            )
        )
        from_an_app = WorkoutLogged(
            workout_id=uuid.uuid5(uuid.NAMESPACE_URL, f"app-workout-{user_id}"),
            user_id=user_id,
            title="Logged on the watch",
            date=when + timedelta(days=5),
            status="completed",
            exercises=_exercises(index),
            total_sets=3,
            total_reps=3 * (8 + index % 5),
        )
        await self.publish(from_an_app, source="/platform/watch-app")
        if index % 5 == 4:
            await self.publish(from_an_app, source="/platform/watch-app")  # a new event id

    # --- poison -----------------------------------------------------------------------------

    async def poison(self, clients: list[int]) -> None:
        for topic in (BOOKING_SESSIONS, WORKOUT_SESSIONS, COMMERCE_PACKAGES):
            await self.publish_record(topic.name, b"{not json", b"1")
            await self.publish_record(topic.name, json.dumps({"hello": "world"}).encode(), b"1")
            self.history.poison += 2
        invalid = build_event(
            PackagePurchased(purchase_id="x", user_id=1, sessions=1, purchased_at=BASE),
            source="/platform/store",
        ).model_dump(mode="json")
        invalid["data"]["sessions"] = -3
        await self.publish_record(COMMERCE_PACKAGES.name, json.dumps(invalid).encode(), b"1")
        first, second = clients[0], clients[1]
        taken = OTHER_SERVICES_SESSIONS  # client 0's delivered session
        await self.publish(
            # A session id reused for another client: every consumer of bookings refuses it.
            SessionBooked(
                session_id=taken, user_id=second, trainer_id=TRAINERS[1], session_date=BASE
            ),
            # Booking never heard of this session: it cannot reschedule it.
            SessionRescheduled(session_id=OTHER_SERVICES_SESSIONS - 1, session_date=BASE),
            # Completed is final for booking.
            SessionStarted(session_id=taken, user_id=first, trainer_id=TRAINERS[0], at=BASE),
        )
        self.history.poison += 4


async def play(platform: IsolatedPlatform, *, clients: int = 40) -> History:
    """Play the history on `platform` (all four services running) and wait until it has
    settled everywhere."""
    async with platform.http(timeout=30) as http:
        player = Player(platform, http)
        ids = client_ids(clients)
        player.history.clients = ids
        await asyncio.gather(*(player.client(i, user) for i, user in enumerate(ids)))
        await player.poison(ids)
    await platform.settled(within=180)
    return player.history
