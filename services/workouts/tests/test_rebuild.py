"""The workouts topic is the system of record: a copy of the service rebuilt from nothing but
the topics holds the same workouts, exercises, sets and timestamps, and the same view of
booked and group sessions."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import text

from contracts.events import SessionBooked, SessionCancelled
from servicekit.consumer import Outcome
from servicekit.runtime import ServiceRuntime
from testkit.helpers import consumed, outbox_records

from .groups import BOOKING, joined, left

pytestmark = pytest.mark.infra

TABLES = (
    "workout_sessions",
    "exercises",
    "exercise_sets",
    "sessions",
    "group_sessions",
    "group_places",
)


def at(moment: str) -> datetime:
    return datetime.fromisoformat(moment)


async def rows(runtime: ServiceRuntime, table: str) -> list[Any]:
    async with runtime.database.transaction() as db:
        result = await db.execute(text(f"select * from {table} order by 1, 2"))  # noqa: S608
        return list(result.all())


async def test_own_events_come_back_already_applied(
    api: AsyncClient, runtime: ServiceRuntime
) -> None:
    created = await api.post("/api/workout/sessions", json={"userId": 5, "title": "Run"})
    assert created.status_code == 201
    [record] = await outbox_records(runtime.database)
    assert await runtime.consumer.process(record) is Outcome.DUPLICATE


@pytest.mark.parametrize("batch_size", [1, 500], ids=["one-by-one", "one-batch"])
async def test_a_rebuild_from_the_topics_gives_the_same_workouts(
    api: AsyncClient,
    runtime: ServiceRuntime,
    make_app: Callable[[], FastAPI],
    batch_size: int,
) -> None:
    booking_events = [
        consumed(
            SessionBooked(
                session_id=8, user_id=5, trainer_id=6, session_date="2026-01-15T10:00:00Z"
            ),
            event_id="booked-8",
        ),
        consumed(
            SessionBooked(
                session_id=9, user_id=5, trainer_id=6, session_date="2026-01-16T10:00:00Z"
            ),
            event_id="booked-9",
        ),
        consumed(
            SessionCancelled(session_id=9, user_id=5, trainer_id=6, at=at("2026-01-16T09:00:00Z")),
            event_id="cancelled-9",
        ),
        consumed(joined(5, session_id=20, trainer_id=6), event_id="joined-20-5", source=BOOKING),
        consumed(joined(7, session_id=20, trainer_id=6), event_id="joined-20-7", source=BOOKING),
        consumed(left(7, session_id=20, trainer_id=6), event_id="left-20-7", source=BOOKING),
    ]
    for record in booking_events:
        assert await runtime.consumer.process(record) is Outcome.APPLIED
    trainer_led = {"sessionType": "trainer-led", "sessionId": 8, "trainerId": 6}
    exercises = [{"name": "Squat", "sets": [{"reps": 8, "weight": 60}, {"reps": 6, "weight": 70}]}]
    planned = await api.post(
        "/api/workout/sessions",
        json={
            "userId": 5,
            "title": "PT",
            "status": "planned",
            "exercises": exercises,
            **trainer_led,
        },
    )
    await api.post("/api/workout/sessions", json={"userId": 5, "title": "Run", "duration": 30})
    await api.post(
        "/api/workout/sessions", json={"userId": 7, "title": "Yoga", "status": "planned"}
    )
    for status in ("in_progress", "completed"):
        moved = await api.patch(
            f"/api/workout/sessions/{planned.json()['id']}", json={"status": status}
        )
        assert moved.status_code == 200
    refused = await api.post(
        "/api/workout/sessions",
        json={
            "userId": 5,
            "title": "PT",
            "sessionId": 9,
            "sessionType": "trainer-led",
            "trainerId": 6,
        },
    )
    assert refused.status_code == 409
    group = {"sessionType": "group", "sessionId": 20, "trainerId": 6, "title": "Circuit"}
    taken = await api.post("/api/workout/sessions", json={"userId": 5, **group})
    assert taken.status_code == 201
    left_it = await api.post("/api/workout/sessions", json={"userId": 7, **group})
    assert left_it.status_code == 409

    rebuilt_app = make_app()
    rebuilt: ServiceRuntime = rebuilt_app.state.runtime
    history = booking_events + await outbox_records(runtime.database)
    for start in range(0, len(history), batch_size):
        batch = history[start : start + batch_size]
        applied = await rebuilt.consumer.process_batch(batch)
        assert applied.outcomes == [Outcome.APPLIED] * len(batch)
    for table in TABLES:
        original = await rows(runtime, table)
        assert original, table
        assert await rows(rebuilt, table) == original, table
