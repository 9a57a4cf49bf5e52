"""The chaos run's workload: each client's plan played in order, as another platform service
on Kafka and as staff, trainers and clients through the APIs, while faults strike.

It keeps the truth as it goes. A record counts once the broker acknowledged it (sent again
with the same event id until it is). A request counts once a service accepted it; an answer
lost to a fault is settled by asking the service that owns the record (booking's sessions,
workouts' workouts) whether it landed, before trying again. So the truth is exact, and
the checker can demand exact equality.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import httpx
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from contracts.envelope import build_event, encode, partition_key, record_headers, topic_of
from contracts.events import (
    EventPayload,
    PackagePurchased,
    SessionBooked,
    SessionCancelled,
    SessionCompleted,
)
from contracts.identity import Role
from contracts.principals import PLATFORM, STORE
from contracts.session_ids import MAX_SERIAL, PRODUCERS
from ops.chaos.plan import (
    CHAOS_PRODUCER,
    PACKAGE_SIZE,
    Ending,
    PlannedClient,
    PlannedSession,
    Route,
)
from ops.chaos.stage import Stage
from ops.chaos.truth import ClientTruth

T = TypeVar("T")
SOURCE = PRODUCERS[CHAOS_PRODUCER]
#: Sessions take place in the future: no cancellation is late under any policy.
SESSIONS_FROM = datetime(2030, 1, 7, 9, 0, tzinfo=UTC)
#: How long one step may keep failing before the run gives up on it.
STEP_DEADLINE = 180.0
#: Pause between attempts while a fault lasts.
RETRY_PAUSE = 0.5
#: Longer than any fault lasts (a paused process answers once continued): an answer is then
#: missing only when its request has ended on the server's side (a reset, a 5xx), so asking
#: the owner settles it; a request given up earlier could still land after the asking.
HTTP_TIMEOUT = 45.0


class WorkloadFailed(Exception):
    """A step was refused for a reason no fault explains, or kept failing past its deadline."""


@dataclass
class Progress:
    sessions_done: int = 0
    kafka_retries: int = 0
    http_retries: int = 0
    settled_by_asking: int = 0


class Pacer:
    """Hands out start times `1/rate` seconds apart, across every client's task. Time lost
    to a fault is caught up: what the outage held back comes as a burst after it, as other
    services' backlogs do."""

    def __init__(self, rate: float) -> None:
        self.interval = 1.0 / rate
        self.next_at = time.monotonic()

    async def wait(self) -> None:
        at = self.next_at
        self.next_at = at + self.interval
        delay = at - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)


class Workload:
    def __init__(self, stage: Stage, seed: int, clients: list[PlannedClient], rate: float) -> None:
        self.stage = stage
        self.seed = seed
        self.clients = clients
        self.pacer = Pacer(rate)
        self.truth = {client.user_id: ClientTruth(client.user_id) for client in clients}
        self.progress = Progress()
        #: Each client's sessions booked through the API so far.
        self._api_sessions: dict[int, set[int]] = {client.user_id: set() for client in clients}
        self._producers: dict[str, AIOKafkaProducer] = {}
        self._http: httpx.AsyncClient | None = None

    async def run(self) -> None:
        self._http = httpx.AsyncClient(timeout=HTTP_TIMEOUT)
        for principal in (PLATFORM.name, STORE.name):
            producer = AIOKafkaProducer(
                **self.stage.kafka_options(principal),
                acks="all",
                linger_ms=5,
                request_timeout_ms=15_000,
            )
            await producer.start()
            self._producers[principal] = producer
        try:
            await asyncio.gather(*(self._play(client) for client in self.clients))
        finally:
            for producer in self._producers.values():
                await producer.stop()
            await self._http.aclose()

    # --- one client ----------------------------------------------------------------------

    async def _play(self, client: PlannedClient) -> None:
        truth = self.truth[client.user_id]
        for number in range(client.packages):
            purchase = PackagePurchased(
                purchase_id=f"chaos-{self.seed}-{client.user_id}-{number}",
                user_id=client.user_id,
                sessions=PACKAGE_SIZE,
                purchased_at=datetime.now(UTC),
            )
            await self._publish(STORE.name, purchase)
            truth.purchased += PACKAGE_SIZE
        if client.granted:
            await self._grant(client)
            truth.purchased += client.granted
        for session in client.sessions:
            await self.pacer.wait()
            for _ in range(session.solo_before):
                await self._log_workout(client.user_id, "solo", None, None)
                truth.solo_workouts += 1
            if session.route is Route.KAFKA:
                session_id = await self._kafka_session(session)
            else:
                session_id = await self._api_session(session)
            if session.ending is Ending.DELIVERED:
                truth.delivered.add(session_id)
            else:
                truth.cancelled.add(session_id)
            self.progress.sessions_done += 1

    async def _kafka_session(self, session: PlannedSession) -> int:
        session_id = session.kafka_session_id
        assert session.serial <= MAX_SERIAL
        await self._publish(
            PLATFORM.name,
            SessionBooked(
                session_id=session_id,
                user_id=session.user_id,
                trainer_id=session.trainer_id,
                session_date=_session_date(session),
            ),
        )
        ending = SessionCompleted if session.ending is Ending.DELIVERED else SessionCancelled
        await self._publish(
            PLATFORM.name,
            ending(
                session_id=session_id,
                user_id=session.user_id,
                trainer_id=session.trainer_id,
                at=datetime.now(UTC),
            ),
        )
        return session_id

    async def _api_session(self, session: PlannedSession) -> int:
        session_id = await self._book(session)
        if session.ending is Ending.DELIVERED:
            await self._log_workout(session.user_id, "trainer-led", session_id, session.trainer_id)
            self.truth[session.user_id].trainer_led_workouts += 1
        else:
            await self._cancel(session_id)
        return session_id

    # --- Kafka ---------------------------------------------------------------------------

    async def _publish(self, principal: str, payload: EventPayload) -> None:
        """Until the broker acknowledges it; always the same bytes (the same event id), so
        a copy that landed before an error reads as the duplicate it is."""
        value = encode(build_event(payload, source=SOURCE, event_id=str(uuid.uuid4())))
        topic, key = topic_of(payload).name, partition_key(payload)
        producer = self._producers[principal]

        async def send() -> bool:
            await producer.send_and_wait(topic, value, key=key, headers=record_headers())
            return True

        await self._until(send, what=f"publishing {payload.event_type}", kafka=True)

    # --- HTTP ----------------------------------------------------------------------------

    async def _book(self, session: PlannedSession) -> int:
        body = {
            "userId": session.user_id,
            "trainerId": session.trainer_id,
            "sessionDate": _session_date(session).isoformat(),
            "allowWithoutCredit": True,
        }
        known = self._api_sessions[session.user_id]

        async def attempt() -> int | None:
            answer = await self._request("booking", "POST", "/api/sessions", Role.STAFF, body)
            if answer is not None:
                return int(_accepted(answer, "booking a session")["id"])
            landed = await self._api_sessions_of(session.user_id) - known
            if len(landed) > 1:
                raise WorkloadFailed(f"one booking of client {session.user_id} landed twice")
            if landed:
                self.progress.settled_by_asking += 1
                return landed.pop()
            return None

        session_id = await self._until(attempt, what="booking a session")
        known.add(session_id)
        return session_id

    async def _log_workout(
        self, user_id: int, session_type: str, session_id: int | None, trainer_id: int | None
    ) -> None:
        body: dict[str, Any] = {"userId": user_id, "title": "Chaos workout"}
        if session_id is not None:
            body |= {"sessionType": session_type, "sessionId": session_id, "trainerId": trainer_id}
        role, subject = (
            (Role.TRAINER, str(trainer_id)) if trainer_id else (Role.CLIENT, str(user_id))
        )
        truth = self.truth[user_id]
        before = truth.solo_workouts if session_id is None else truth.trainer_led_workouts

        async def attempt() -> bool | None:
            path = "/api/workout/sessions"
            answer = await self._request("workouts", "POST", path, role, body, subject)
            if answer is not None and answer.status_code == 404 and session_id is not None:
                return None  # workouts has not heard of the booking yet
            if answer is not None:
                _accepted(answer, f"logging a {session_type} workout")
                return True
            landed = await self._workouts_of(user_id, session_type) - before
            if landed > 1:
                raise WorkloadFailed(f"one workout of client {user_id} landed {landed} times")
            if landed:
                self.progress.settled_by_asking += 1
                return True
            return None

        await self._until(attempt, what=f"logging a {session_type} workout")

    async def _cancel(self, session_id: int) -> None:
        path = f"/api/sessions/{session_id}"

        async def attempt() -> bool | None:
            answer = await self._request(
                "booking", "PATCH", path, Role.STAFF, {"status": "cancelled"}
            )
            if answer is not None and answer.status_code != 409:
                _accepted(answer, "cancelling a session")
                return True
            current = await self._request("booking", "GET", path, Role.STAFF)
            if current is not None and _accepted(current, "reading a session")["status"] == (
                "cancelled"
            ):
                return True
            return None

        await self._until(attempt, what="cancelling a session")

    async def _grant(self, client: PlannedClient) -> None:
        body = {"sessions": client.granted, "reason": "chaos run"}
        headers = {"Idempotency-Key": f"chaos-{self.seed}-{client.user_id}"}
        path = f"/api/credits/{client.user_id}/grants"

        async def attempt() -> bool | None:
            answer = await self._request("credits", "POST", path, Role.STAFF, body, headers=headers)
            if answer is None:
                return None  # the same key again: granted once, however often asked
            _accepted(answer, "granting credits")
            return True

        await self._until(attempt, what="granting credits")

    async def _api_sessions_of(self, user_id: int) -> set[int]:
        """The client's sessions booked through booking's API (ids of its own block)."""
        rows = await self._listing("booking", "/api/sessions", {"userId": user_id}, 500)
        return {int(row["id"]) for row in rows if int(row["id"]) <= MAX_SERIAL}

    async def _workouts_of(self, user_id: int, session_type: str) -> int:
        rows = await self._listing("workouts", "/api/workout/sessions", {"userId": user_id}, 100)
        return sum(1 for row in rows if row.get("sessionType", "solo") == session_type)

    async def _listing(
        self, service: str, path: str, query: dict[str, Any], limit: int
    ) -> list[dict[str, Any]]:
        """Every row of a paged listing (staff read everything), asked until answered."""
        rows: list[dict[str, Any]] = []

        async def page() -> bool | None:
            after = {"after": rows[-1]["id"]} if rows else {}
            params = {**query, **after, "limit": limit}
            answer = await self._request(service, "GET", path, Role.STAFF, params=params)
            if answer is None:
                return None
            found = _accepted(answer, f"listing {path}")
            rows.extend(found)
            return len(found) < limit

        while not await self._until(page, what=f"listing {path}"):
            pass
        return rows

    async def _request(
        self,
        service: str,
        method: str,
        path: str,
        role: Role,
        body: dict[str, Any] | None = None,
        subject: str = "chaos",
        *,
        headers: dict[str, str] | None = None,
        params: dict[str, Any] | None = None,
    ) -> httpx.Response | None:
        """The service's answer, or None when there is none to trust: no connection, a
        timeout, or a 5xx while a fault lasts."""
        assert self._http is not None
        token = self.stage.token(role, subject)
        try:
            answer = await self._http.request(
                method,
                self.stage.url(service) + path,
                json=body,
                params=params,
                headers={"authorization": f"Bearer {token}", **(headers or {})},
            )
        except httpx.HTTPError:
            self.progress.http_retries += 1
            return None
        if answer.status_code >= 500:
            self.progress.http_retries += 1
            return None
        return answer

    async def _until(
        self, attempt: Callable[[], Awaitable[T | None]], *, what: str, kafka: bool = False
    ) -> T:
        deadline = time.monotonic() + STEP_DEADLINE
        while True:
            try:
                outcome = await attempt()
            except (KafkaError, OSError, TimeoutError):
                outcome = None
                if kafka:
                    self.progress.kafka_retries += 1
            if outcome is not None:
                return outcome
            if time.monotonic() > deadline:
                raise WorkloadFailed(f"{what}: no success within {STEP_DEADLINE:.0f} s")
            await asyncio.sleep(RETRY_PAUSE)


def _accepted(answer: httpx.Response, what: str) -> Any:
    if not answer.is_success:
        raise WorkloadFailed(f"{what}: refused with {answer.status_code} {answer.text[:300]}")
    return answer.json()


def _session_date(session: PlannedSession) -> datetime:
    return SESSIONS_FROM + timedelta(hours=session.serial % 10_000)
