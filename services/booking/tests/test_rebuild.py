"""Topics are the system of record: a booking service rebuilt on an empty database from
`booking.sessions` and `credits.ledger` holds exactly the sessions the original holds."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from sqlalchemy import text

from contracts.events import (
    Balance,
    CreditsGranted,
    CreditsRunningLow,
    EventPayload,
    GrantedPackage,
    PackageType,
    SessionBooked,
    SessionCompleted,
    SessionCreditDeducted,
    SessionCreditRestored,
    SessionStarted,
)
from servicekit.consumer import Outcome
from servicekit.dead_letters import ConsumedRecord
from servicekit.runtime import ServiceRuntime
from testkit.helpers import RecordingDeadLetters, consumed, outbox_records

from .conftest import KIOSK

pytestmark = pytest.mark.infra

CLIENT, TRAINER, OTHER = 123, 456, 789
AT = datetime(2026, 1, 15, 11, tzinfo=UTC)
#: Staff book without credit: credits are not the point here, only what the ledger says.
BY_STAFF = {"allowWithoutCredit": True}


class TopicLog:
    """Every record the original service consumed or published, in topic order."""

    def __init__(self, runtime: ServiceRuntime, api: AsyncClient) -> None:
        self.runtime = runtime
        self.api = api
        self.records: list[ConsumedRecord] = []
        self.outcomes: list[Outcome] = []

    async def call(self, method: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = await self.api.request(method, path, json=body)
        assert response.status_code in (200, 201), response.text
        published = {record.offset for record in self.records}
        self.records += [
            r for r in await outbox_records(self.runtime.database) if r.offset not in published
        ]
        result: dict[str, Any] = response.json()
        return result

    async def publish(self, payload: EventPayload, event_id: str) -> None:
        """Another service publishes; the original consumes it."""
        record = consumed(payload, event_id=event_id, source=KIOSK)
        self.records.append(record)
        self.outcomes.append(await self.runtime.consumer.process(record))


async def table(runtime: ServiceRuntime, name: str) -> list[Any]:
    async with runtime.database.transaction() as db:
        return list((await db.execute(text(f"select * from {name} order by 1"))).all())  # noqa: S608


async def test_a_rebuild_from_the_topics_gives_the_same_sessions(
    runtime: ServiceRuntime, api: AsyncClient, make_app: Callable[[], FastAPI]
) -> None:
    runtime.consumer.dead_letters = RecordingDeadLetters()
    log = TopicLog(runtime, api)
    when = "2026-01-15T10:00:00Z"
    first = await log.call(
        "POST",
        "/api/sessions",
        {"userId": CLIENT, "trainerId": TRAINER, "sessionDate": when, **BY_STAFF},
    )
    second = await log.call(
        "POST",
        "/api/sessions",
        {
            "userId": CLIENT,
            "trainerId": OTHER,
            "sessionDate": when,
            "duration": 90,
            "notes": "hips",
            **BY_STAFF,
        },
    )
    await log.publish(
        SessionBooked(session_id=20, user_id=OTHER, trainer_id=TRAINER, session_date=AT), "k-20"
    )
    third = await log.call(
        "POST",
        "/api/sessions",
        {"userId": OTHER, "trainerId": TRAINER, "sessionDate": when, **BY_STAFF},
    )
    assert third["id"] == 21
    await log.call("PATCH", f"/api/sessions/{first['id']}", {"status": "in_progress"})
    await log.call("PATCH", f"/api/sessions/{first['id']}", {"status": "completed"})
    balance = Balance(total=10, used=1, remaining=9)
    await log.publish(
        SessionCreditDeducted(
            user_id=CLIENT,
            session_id=first["id"],
            trainer_id=TRAINER,
            cause="session-completed",
            balance=balance,
        ),
        "ledger-1",
    )
    await log.call(
        "PATCH", f"/api/sessions/{second['id']}", {"sessionDate": "2026-01-22T10:00:00Z"}
    )
    await log.call("PATCH", f"/api/sessions/{second['id']}", {"status": "in_progress"})
    await log.publish(
        SessionCreditDeducted(
            user_id=CLIENT,
            session_id=second["id"],
            trainer_id=OTHER,
            cause="workout-logged",
            balance=Balance(total=10, used=2, remaining=8),
        ),
        "ledger-2",
    )
    await log.call(
        "PATCH", f"/api/sessions/{second['id']}", {"status": "cancelled", "reason": "injury"}
    )
    await log.publish(
        SessionCreditRestored(
            user_id=CLIENT, session_id=second["id"], reason="session cancelled", balance=balance
        ),
        "ledger-3",
    )
    # What the ledger says of the clients' credits: the latest balance, unlimited packages.
    await log.publish(
        CreditsGranted(
            user_id=OTHER,
            amount=0,
            balance=Balance(total=0, used=0, remaining=0),
            package=GrantedPackage(
                package_type=PackageType.UNLIMITED,
                valid_until=datetime(2026, 3, 1, tzinfo=UTC),
                package_id=uuid.UUID(int=4),
                purchased_at=AT,
            ),
        ),
        "ledger-4",
    )
    await log.publish(
        CreditsRunningLow(
            user_id=CLIENT,
            threshold=1,
            balance=Balance(total=10, used=9, remaining=1, held=1),
            caused_by="ledger-3",
        ),
        "ledger-5",
    )
    await log.publish(
        SessionStarted(session_id=20, user_id=OTHER, trainer_id=TRAINER, at=AT), "k-s"
    )
    await log.call("PATCH", "/api/sessions/20", {"status": "completed"})
    # Another service completes a session booking never heard of, then one it cannot move.
    await log.publish(
        SessionCompleted(session_id=35, user_id=CLIENT, trainer_id=TRAINER, at=AT), "k-35"
    )
    await log.call("PATCH", f"/api/sessions/{third['id']}", {"status": "no_show"})
    await log.publish(
        SessionStarted(session_id=third["id"], user_id=OTHER, trainer_id=TRAINER, at=AT), "k-bad"
    )
    assert log.outcomes.count(Outcome.DEAD_LETTERED) == 1

    rebuilt_app = make_app()
    rebuilt: ServiceRuntime = rebuilt_app.state.runtime
    rebuilt.consumer.dead_letters = rebuilt_dead_letters = RecordingDeadLetters()
    try:
        for record in log.records:
            await rebuilt.consumer.process(record)
        for name in ("sessions", "session_credits", "client_balances", "unlimited_packages"):
            original_rows = await table(runtime, name)
            assert original_rows
            assert await table(rebuilt, name) == original_rows
        assert len(rebuilt_dead_letters.reasons) == 1
        # Both hand out the same next id: the rebuild's sequence is past every id it saw.
        body = {"userId": CLIENT, "trainerId": TRAINER, "sessionDate": when, **BY_STAFF}
        async with AsyncClient(
            transport=ASGITransport(app=rebuilt_app), base_url="http://rebuilt", headers=api.headers
        ) as rebuilt_api:
            rebuilt_next = (await rebuilt_api.post("/api/sessions", json=body)).json()["id"]
        original_next = (await api.post("/api/sessions", json=body)).json()["id"]
        assert rebuilt_next == original_next == 36
    finally:
        await rebuilt.database.dispose()
