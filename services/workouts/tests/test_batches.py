"""A batch of events is applied set-wise: the sessions and workouts it names are loaded
once, its events decide in their order, and what they changed is written once. These pin
that a batch ends exactly as its events applied one by one would, and that a refused event
is dead-lettered alone."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import text

import testkit.events
from contracts import events
from servicekit.consumer import Outcome
from servicekit.dead_letters import ConsumedRecord
from servicekit.runtime import ServiceRuntime
from testkit.events import CLIENT, TRAINER, booked, moved, status_changed
from testkit.helpers import RecordingDeadLetters, consumed

pytestmark = pytest.mark.infra

OTHER = 999
FIRST_SENT = datetime(2026, 1, 15, 10, tzinfo=UTC)
TABLES = ("sessions", "workout_sessions", "exercises", "exercise_sets")
WORKOUT_A, WORKOUT_B, WORKOUT_C = (uuid.UUID(int=n) for n in (1, 2, 3))

#: One batch of events (an event id of its own, or the same id again for a duplicate).
DeliverBatch = Callable[..., Awaitable[list[Outcome]]]


def logged(
    workout_id: uuid.UUID,
    session_id: int | None = None,
    status: events.WorkoutStatus = events.WorkoutStatus.COMPLETED,
    user_id: int = CLIENT,
) -> events.WorkoutLogged:
    exercises = [
        events.Exercise(
            name="Squat", sets=[events.ExerciseSet(reps=8, weight=60), events.ExerciseSet(reps=6)]
        ),
        events.Exercise(name="Plank"),
        events.Exercise(name="Row", sets=[events.ExerciseSet(reps=12, weight=40.5)]),
    ]
    return testkit.events.workout(
        session_id,
        workout_id=workout_id,
        user_id=user_id,
        title="Workout",
        date=FIRST_SENT,
        status=status,
        exercises=exercises if session_id is not None else [],
        total_weight=966.0,
        total_reps=26,
        total_sets=3,
        experience_points=0 if status is not events.WorkoutStatus.COMPLETED else 24,
    )


def records(
    *payloads: events.EventPayload | tuple[events.EventPayload, str],
) -> list[ConsumedRecord]:
    """The events as consumed records, each sent a minute after the one before."""
    made = []
    for offset, event in enumerate(payloads):
        payload, event_id = event if isinstance(event, tuple) else (event, None)
        sent = FIRST_SENT + timedelta(minutes=offset)
        made.append(consumed(payload, event_id=event_id, time=sent, offset=offset))
    return made


@pytest.fixture
def deliver_batch(runtime: ServiceRuntime, dead_letters: RecordingDeadLetters) -> DeliverBatch:
    async def deliver(
        *payloads: events.EventPayload | tuple[events.EventPayload, str],
    ) -> list[Outcome]:
        return (await runtime.consumer.process_batch(records(*payloads))).outcomes

    return deliver


async def rows(runtime: ServiceRuntime, table: str) -> list[Any]:
    async with runtime.database.transaction() as db:
        result = await db.execute(text(f"select * from {table} order by 1, 2, 3"))  # noqa: S608
        return list(result.all())


async def workout(runtime: ServiceRuntime, workout_id: uuid.UUID) -> Any:
    async with runtime.database.transaction() as db:
        found = await db.execute(
            text("select * from workout_sessions where id = :id"), {"id": workout_id}
        )
        return found.one()


async def known_sessions(runtime: ServiceRuntime) -> list[tuple[int, int, int, str]]:
    return [tuple(row) for row in await rows(runtime, "sessions")]


#: Sessions booked and moved, trainer-led workouts logged for them and moved, solo ones.
STORY: list[events.EventPayload] = [
    booked(1),
    booked(2),
    logged(WORKOUT_A, session_id=1, status=events.WorkoutStatus.PLANNED),
    moved(events.SessionStarted, 1),
    status_changed(
        logged(WORKOUT_A, 1),
        events.WorkoutStatus.IN_PROGRESS,
        previous=events.WorkoutStatus.PLANNED,
    ),
    logged(WORKOUT_B),
    status_changed(
        logged(WORKOUT_A, 1),
        events.WorkoutStatus.COMPLETED,
        previous=events.WorkoutStatus.IN_PROGRESS,
    ),
    moved(events.SessionCompleted, 1),
    moved(events.SessionNoShow, 3),
    booked(3),
    logged(WORKOUT_C, session_id=2),
    moved(events.SessionCancelled, 2),
]


async def test_a_batch_ends_as_its_events_applied_one_by_one(
    runtime: ServiceRuntime, make_app: Callable[[], FastAPI], deliver_batch: DeliverBatch
) -> None:
    assert await deliver_batch(*STORY) == [Outcome.APPLIED] * len(STORY)
    one_by_one: ServiceRuntime = make_app().state.runtime
    for record in records(*STORY):
        assert await one_by_one.consumer.process(record) is Outcome.APPLIED
    for table in TABLES:
        assert await rows(runtime, table) == await rows(one_by_one, table), table
    assert await known_sessions(runtime) == [
        (1, CLIENT, TRAINER, "completed"),
        (2, CLIENT, TRAINER, "cancelled"),
        (3, CLIENT, TRAINER, "no_show"),
    ]
    moved_twice = await workout(runtime, WORKOUT_A)
    assert (moved_twice.status, moved_twice.experience_points) == ("completed", 24)
    assert moved_twice.created_at == FIRST_SENT + timedelta(minutes=2)
    assert moved_twice.updated_at == FIRST_SENT + timedelta(minutes=6)
    assert len(await rows(runtime, "exercise_sets")) == 6


async def test_a_batch_moves_what_earlier_batches_stored(
    runtime: ServiceRuntime, deliver_batch: DeliverBatch
) -> None:
    await deliver_batch(
        booked(1), logged(WORKOUT_A, session_id=1, status=events.WorkoutStatus.PLANNED)
    )
    outcomes = await deliver_batch(
        moved(events.SessionStarted, 1),
        status_changed(
            logged(WORKOUT_A, 1),
            events.WorkoutStatus.CANCELLED,
            previous=events.WorkoutStatus.PLANNED,
        ),
        moved(events.SessionCancelled, 1),
        booked(1),
    )
    assert outcomes == [Outcome.APPLIED] * 4
    assert await known_sessions(runtime) == [(1, CLIENT, TRAINER, "cancelled")]
    cancelled = await workout(runtime, WORKOUT_A)
    assert (cancelled.status, cancelled.experience_points) == ("cancelled", 0)
    assert cancelled.updated_at == FIRST_SENT + timedelta(minutes=1)


async def test_duplicates_within_a_batch_are_applied_once(
    runtime: ServiceRuntime, deliver_batch: DeliverBatch, dead_letters: RecordingDeadLetters
) -> None:
    outcomes = await deliver_batch(
        (booked(5), "booked-5"),
        (logged(WORKOUT_A, session_id=5), "logged-a"),
        (booked(5), "booked-5"),
        (logged(WORKOUT_A, session_id=5), "logged-a"),
        (logged(WORKOUT_A, session_id=5), "logged-a-again"),  # under another id: no change
    )
    assert outcomes == [
        Outcome.APPLIED,
        Outcome.APPLIED,
        Outcome.DUPLICATE,
        Outcome.DUPLICATE,
        Outcome.APPLIED,
    ]
    assert dead_letters.reasons == []
    assert len(await rows(runtime, "workout_sessions")) == 1
    assert len(await rows(runtime, "exercises")) == 3
    assert (await workout(runtime, WORKOUT_A)).created_at == FIRST_SENT + timedelta(minutes=1)
    assert await deliver_batch((logged(WORKOUT_A, session_id=5), "logged-a")) == [Outcome.DUPLICATE]


async def test_refusals_in_the_middle_of_a_batch_leave_the_rest_applied(
    runtime: ServiceRuntime, deliver_batch: DeliverBatch, dead_letters: RecordingDeadLetters
) -> None:
    never_logged = uuid.UUID(int=99)
    outcomes = await deliver_batch(
        booked(5),
        logged(WORKOUT_A, session_id=5, status=events.WorkoutStatus.PLANNED),
        booked(5, user_id=OTHER),
        status_changed(
            logged(never_logged, 5),
            events.WorkoutStatus.COMPLETED,
            previous=events.WorkoutStatus.PLANNED,
        ),
        moved(events.SessionStarted, 5),
        status_changed(
            logged(WORKOUT_A, 5),
            events.WorkoutStatus.COMPLETED,
            previous=events.WorkoutStatus.PLANNED,
        ),
        booked(6, user_id=OTHER),
    )
    assert outcomes == [
        Outcome.APPLIED,
        Outcome.APPLIED,
        Outcome.DEAD_LETTERED,
        Outcome.DEAD_LETTERED,
        Outcome.APPLIED,
        Outcome.APPLIED,
        Outcome.APPLIED,
    ]
    assert dead_letters.reasons == [
        f"session 5 is booked for client {CLIENT} with trainer {TRAINER}, "
        f"not client {OTHER} with trainer {TRAINER}",
        f"workout {never_logged} changed status before it was logged",
    ]
    assert await known_sessions(runtime) == [
        (5, CLIENT, TRAINER, "in_progress"),
        (6, OTHER, TRAINER, "scheduled"),
    ]
    assert (await workout(runtime, WORKOUT_A)).status == "completed"


async def test_a_session_created_earlier_in_the_batch_refuses_another_client(
    runtime: ServiceRuntime, deliver_batch: DeliverBatch, dead_letters: RecordingDeadLetters
) -> None:
    """Whichever event names a session first creates it, even a status event."""
    outcomes = await deliver_batch(
        moved(events.SessionCancelled, 7), booked(7, user_id=OTHER), booked(7)
    )
    assert outcomes == [Outcome.APPLIED, Outcome.DEAD_LETTERED, Outcome.APPLIED]
    assert dead_letters.reasons[0].endswith(f"not client {OTHER} with trainer {TRAINER}")
    assert await known_sessions(runtime) == [(7, CLIENT, TRAINER, "cancelled")]


async def test_workouts_are_stored_as_logged_whatever_is_known_of_their_session(
    runtime: ServiceRuntime, deliver_batch: DeliverBatch, dead_letters: RecordingDeadLetters
) -> None:
    """History is not judged again: the checks of the API apply to new requests only."""
    outcomes = await deliver_batch(
        booked(5),
        moved(events.SessionCancelled, 5),
        logged(WORKOUT_A, session_id=5),
        logged(WORKOUT_B, session_id=5, user_id=OTHER),
    )
    assert outcomes == [Outcome.APPLIED] * 4
    assert dead_letters.reasons == []
    assert len(await rows(runtime, "workout_sessions")) == 2
