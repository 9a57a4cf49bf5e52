"""A batch of `booking.sessions` events is applied set-wise: the sessions it names are
locked and loaded once, its events decide in their order, and what they changed is written
once. These pin that a batch ends exactly as its events applied one by one would."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from httpx import AsyncClient
from sqlalchemy import func, select

from booking.store import SESSION_IDS_LOCK
from contracts.events import (
    Balance,
    EventPayload,
    SessionCancelled,
    SessionCompleted,
    SessionCreditDeducted,
    SessionRescheduled,
    SessionStarted,
)
from servicekit.consumer import Outcome
from servicekit.runtime import ServiceRuntime
from testkit.events import CLIENT, DATE, TRAINER, booked, moved
from testkit.helpers import RecordingDeadLetters, consumed

pytestmark = pytest.mark.infra

OTHER = 789
SENT = datetime(2026, 1, 1, 8, tzinfo=UTC)

#: One batch of events (an event id of its own, or the same id again for a duplicate).
DeliverBatch = Callable[..., Coroutine[Any, Any, list[Outcome]]]


@pytest.fixture
def deliver_batch(runtime: ServiceRuntime, dead_letters: RecordingDeadLetters) -> DeliverBatch:
    """Hands events to the service's consumer as one batch, each sent at `SENT`."""

    async def deliver(*events: EventPayload | tuple[EventPayload, str]) -> list[Outcome]:
        records = []
        for offset, event in enumerate(events):
            payload, event_id = event if isinstance(event, tuple) else (event, None)
            records.append(consumed(payload, event_id=event_id, time=SENT, offset=offset))
        return (await runtime.consumer.process_batch(records)).outcomes

    return deliver


async def session(api: AsyncClient, session_id: int) -> dict[str, Any]:
    response = await api.get(f"/api/sessions/{session_id}")
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


async def book_through_the_api(api: AsyncClient) -> int:
    response = await api.post(
        "/api/sessions",
        json={
            "userId": CLIENT,
            "trainerId": TRAINER,
            "sessionDate": "2026-02-01T10:00:00Z",
            "allowWithoutCredit": True,
        },
    )
    assert response.status_code == 201, response.text
    session_id: int = response.json()["id"]
    return session_id


async def test_a_batch_books_and_moves_several_sessions(
    deliver_batch: DeliverBatch, api: AsyncClient, dead_letters: RecordingDeadLetters
) -> None:
    outcomes = await deliver_batch(
        booked(3),
        booked(9, duration=45, location="Gym"),
        moved(SessionStarted, 3),
        booked(4),
        moved(SessionCompleted, 3),
        moved(SessionCancelled, 9),
    )
    assert outcomes == [Outcome.APPLIED] * 6
    assert dead_letters.reasons == []
    third, ninth, fourth = await session(api, 3), await session(api, 9), await session(api, 4)
    assert (third["status"], third["createdAt"], third["updatedAt"]) == (
        "completed",
        "2026-01-01T08:00:00Z",
        "2026-01-15T10:05:00Z",
    )
    assert (ninth["status"], ninth["duration"], ninth["location"]) == ("cancelled", 45, "Gym")
    assert fourth["status"] == "scheduled"
    # The sequence moves past the largest id the batch created.
    assert await book_through_the_api(api) == 10


async def test_a_batch_moves_sessions_booked_in_earlier_batches(
    deliver_batch: DeliverBatch, api: AsyncClient
) -> None:
    await deliver_batch(booked(1), booked(2))
    first_id = await book_through_the_api(api)
    outcomes = await deliver_batch(
        moved(SessionStarted, 1), moved(SessionStarted, first_id), moved(SessionCompleted, 1)
    )
    assert outcomes == [Outcome.APPLIED] * 3
    assert (await session(api, 1))["status"] == "completed"
    assert (await session(api, 2))["status"] == "scheduled"
    assert (await session(api, first_id))["status"] == "in_progress"


async def test_duplicates_within_a_batch_are_applied_once(
    deliver_batch: DeliverBatch, api: AsyncClient, dead_letters: RecordingDeadLetters
) -> None:
    outcomes = await deliver_batch(
        (booked(5), "booked-5"),
        (moved(SessionStarted, 5), "started-5"),
        (booked(5), "booked-5"),
        (moved(SessionStarted, 5), "started-5"),
        (booked(5), "booked-5-again"),  # the same booking under another id: no change
    )
    applied, duplicate = Outcome.APPLIED, Outcome.DUPLICATE
    assert outcomes == [applied, applied, duplicate, duplicate, applied]
    assert (await session(api, 5))["status"] == "in_progress"
    assert dead_letters.reasons == []
    assert await deliver_batch((booked(5), "booked-5")) == [Outcome.DUPLICATE]


async def test_a_refusal_in_the_middle_of_a_batch_leaves_the_rest_applied(
    deliver_batch: DeliverBatch, api: AsyncClient, dead_letters: RecordingDeadLetters
) -> None:
    outcomes = await deliver_batch(
        booked(5),
        booked(5, user_id=OTHER),
        moved(SessionCancelled, 5),
        moved(SessionStarted, 5),
        booked(6),
    )
    assert outcomes == [
        Outcome.APPLIED,
        Outcome.DEAD_LETTERED,
        Outcome.APPLIED,
        Outcome.DEAD_LETTERED,
        Outcome.APPLIED,
    ]
    assert dead_letters.reasons == [
        f"session 5 is booked for client {CLIENT} with trainer {TRAINER}, "
        f"not client {OTHER} with trainer {TRAINER}",
        "session 5 is cancelled, which is final: it cannot become in_progress",
    ]
    assert (await session(api, 5))["status"] == "cancelled"
    assert (await session(api, 6))["status"] == "scheduled"


async def test_a_status_event_then_its_booking_in_one_batch_fill_in_the_session(
    deliver_batch: DeliverBatch, api: AsyncClient
) -> None:
    outcomes = await deliver_batch(
        moved(SessionCompleted, 30), booked(30, duration=30, location="Kiosk 3")
    )
    assert outcomes == [Outcome.APPLIED] * 2
    found = await session(api, 30)
    assert (found["status"], found["sessionDate"], found["duration"]) == (
        "completed",
        "2026-01-15T10:00:00Z",
        30,
    )
    assert (found["location"], found["createdAt"]) == ("Kiosk 3", "2026-01-15T10:05:00Z")
    assert await book_through_the_api(api) == 31


async def test_reschedules_in_a_batch_see_the_events_before_them(
    deliver_batch: DeliverBatch, api: AsyncClient, dead_letters: RecordingDeadLetters
) -> None:
    later = datetime(2026, 2, 1, 9, tzinfo=UTC)
    outcomes = await deliver_batch(
        SessionRescheduled(session_id=5, session_date=later),
        booked(5),
        SessionRescheduled(session_id=5, session_date=later),
        moved(SessionStarted, 5),
        SessionRescheduled(session_id=5, session_date=DATE),
    )
    assert outcomes == [
        Outcome.DEAD_LETTERED,
        Outcome.APPLIED,
        Outcome.APPLIED,
        Outcome.APPLIED,
        Outcome.DEAD_LETTERED,
    ]
    assert dead_letters.reasons == [
        "session 5 was never booked",
        "session 5 is in_progress: only a scheduled session can be rescheduled",
    ]
    found = await session(api, 5)
    assert (found["sessionDate"], found["status"]) == ("2026-02-01T09:00:00Z", "in_progress")


async def test_a_booking_reusing_an_id_booked_earlier_in_its_batch_names_the_date_in_utc(
    deliver_batch: DeliverBatch, dead_letters: RecordingDeadLetters
) -> None:
    noon_in_athens = datetime(2026, 1, 15, 12, tzinfo=timezone(timedelta(hours=2)))
    later = datetime(2026, 2, 1, 9, tzinfo=UTC)
    outcomes = await deliver_batch(
        booked(5, session_date=noon_in_athens), booked(5, session_date=later)
    )
    assert outcomes == [Outcome.APPLIED, Outcome.DEAD_LETTERED]
    # As when the first booking came in an earlier batch and the store gave its date back.
    assert dead_letters.reasons == [
        "session 5 is already booked for 2026-01-15T10:00:00+00:00 (60 min); a booking for "
        "2026-02-01T09:00:00+00:00 (60 min) cannot reuse its id"
    ]


async def test_a_batch_of_sessions_and_ledger_verdicts_writes_both(
    deliver_batch: DeliverBatch, api: AsyncClient
) -> None:
    deducted = SessionCreditDeducted(
        user_id=CLIENT,
        session_id=5,
        trainer_id=TRAINER,
        cause="session-completed",
        balance=Balance(total=10, used=1, remaining=9),
    )
    outcomes = await deliver_batch(booked(5), deducted, moved(SessionCompleted, 5))
    assert outcomes == [Outcome.APPLIED] * 3
    found = await session(api, 5)
    assert (found["status"], found["sessionDeducted"]) == ("completed", True)


async def test_only_a_batch_that_may_create_a_session_waits_for_the_id_allocator(
    deliver_batch: DeliverBatch, runtime: ServiceRuntime, api: AsyncClient
) -> None:
    await deliver_batch(booked(5), booked(6))
    async with runtime.database.transaction() as holder:
        await holder.execute(select(func.pg_advisory_xact_lock(SESSION_IDS_LOCK)))
        moving = await asyncio.wait_for(
            deliver_batch(moved(SessionStarted, 5), moved(SessionCancelled, 6)), timeout=10
        )
        assert moving == [Outcome.APPLIED] * 2
        creating = asyncio.create_task(deliver_batch(moved(SessionStarted, 5), booked(7)))
        await asyncio.sleep(0.5)
        assert not creating.done()
    assert await creating == [Outcome.APPLIED] * 2
    assert (await session(api, 7))["status"] == "scheduled"
