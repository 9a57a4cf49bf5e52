"""The service's view of booked sessions, fed through its consumer, and the trainer-led
workouts it refuses because of what it knows: cancelled or missed sessions, and sessions of
another client or trainer. Sessions it does not know yet are accepted."""

from __future__ import annotations

import itertools
import random
from datetime import UTC, datetime
from typing import Any

import pytest
from httpx import AsyncClient
from sqlalchemy import select, text

from contracts.events import (
    EventPayload,
    SessionCancelled,
    SessionCompleted,
    SessionNoShow,
    SessionRescheduled,
    SessionStarted,
    WorkoutLogged,
    WorkoutStatusChanged,
)
from servicekit.consumer import Outcome
from servicekit.db import Database
from servicekit.runtime import ServiceRuntime
from testkit.events import CLIENT, TRAINER, booked, moved
from testkit.helpers import Deliver, RecordingDeadLetters, outbox_events
from workouts.models import BookedSession

pytestmark = pytest.mark.infra

SESSIONS = "/api/workout/sessions"
NOW = datetime(2026, 1, 15, 10, 0, tzinfo=UTC)
OTHER = 999


def trainer_led(
    session_id: int = 7, user_id: int = CLIENT, trainer_id: int = TRAINER, **fields: Any
) -> dict[str, Any]:
    return {
        "userId": user_id,
        "sessionType": "trainer-led",
        "sessionId": session_id,
        "trainerId": trainer_id,
        "title": "Personal Training Session",
        **fields,
    }


async def known_sessions(runtime: ServiceRuntime) -> list[tuple[int, int, int, str]]:
    async with runtime.database.transaction() as db:
        rows = await db.scalars(select(BookedSession).order_by(BookedSession.session_id))
        return [(r.session_id, r.user_id, r.trainer_id, r.status) for r in rows]


async def announced(runtime: ServiceRuntime, kind: type[EventPayload]) -> list[Any]:
    return [e.payload for e in await outbox_events(runtime.database) if isinstance(e.payload, kind)]


# --- the view of sessions ---------------------------------------------------------------


async def test_a_booking_makes_the_session_known_as_scheduled(
    deliver: Deliver, runtime: ServiceRuntime
) -> None:
    assert await deliver(booked(7)) is Outcome.APPLIED
    assert await known_sessions(runtime) == [(7, CLIENT, TRAINER, "scheduled")]


@pytest.mark.parametrize(
    ("event", "status"),
    [
        (SessionStarted, "in_progress"),
        (SessionCompleted, "completed"),
        (SessionCancelled, "cancelled"),
        (SessionNoShow, "no_show"),
    ],
)
async def test_a_session_moves_along_with_its_status_events(
    deliver: Deliver, runtime: ServiceRuntime, event: type[Any], status: str
) -> None:
    await deliver(booked(7))
    assert await deliver(moved(event, 7)) is Outcome.APPLIED
    assert await known_sessions(runtime) == [(7, CLIENT, TRAINER, status)]


async def test_a_status_event_before_its_booking_makes_the_session_known(
    deliver: Deliver, runtime: ServiceRuntime
) -> None:
    await deliver(moved(SessionCancelled, 7))
    await deliver(booked(7))
    assert await known_sessions(runtime) == [(7, CLIENT, TRAINER, "cancelled")]


async def test_a_reschedule_changes_nothing_the_service_keeps(
    deliver: Deliver, runtime: ServiceRuntime
) -> None:
    await deliver(booked(7))
    rescheduled = SessionRescheduled(session_id=7, session_date=NOW)
    assert await deliver(rescheduled) is Outcome.IGNORED
    assert await known_sessions(runtime) == [(7, CLIENT, TRAINER, "scheduled")]


async def test_a_replayed_or_resent_event_changes_nothing(
    deliver: Deliver, runtime: ServiceRuntime
) -> None:
    await deliver(booked(7), event_id="book")
    await deliver(moved(SessionCompleted, 7), event_id="done")
    assert await deliver(booked(7), event_id="book") is Outcome.DUPLICATE
    assert await deliver(moved(SessionStarted, 7), event_id="start-late") is Outcome.APPLIED
    assert await deliver(booked(7), event_id="book-resent") is Outcome.APPLIED
    assert await known_sessions(runtime) == [(7, CLIENT, TRAINER, "completed")]


async def test_any_arrival_order_gives_the_same_view(
    deliver: Deliver, runtime: ServiceRuntime, owner_database: Database
) -> None:
    """Every order of two sessions' stories, as a replay or a rebuild could deliver them."""
    story: list[tuple[str, EventPayload]] = [
        ("book-1", booked(1)),
        ("start-1", moved(SessionStarted, 1)),
        ("done-1", moved(SessionCompleted, 1)),
        ("book-2", booked(2, trainer_id=OTHER)),
        ("cancel-2", moved(SessionCancelled, 2, trainer_id=OTHER)),
    ]
    orders = list(itertools.permutations(story))
    random.Random(11).shuffle(orders)
    for n, order in enumerate(orders[:12]):
        async with owner_database.transaction() as db:
            await db.execute(text("truncate sessions, processed_events"))
        for event_id, payload in order:
            assert await deliver(payload, event_id=f"{n}-{event_id}") is Outcome.APPLIED
        assert await known_sessions(runtime) == [
            (1, CLIENT, TRAINER, "completed"),
            (2, CLIENT, OTHER, "cancelled"),
        ], [event_id for event_id, _ in order]


async def test_a_booking_reusing_a_session_id_for_another_client_is_dead_lettered(
    deliver: Deliver, runtime: ServiceRuntime, dead_letters: RecordingDeadLetters
) -> None:
    await deliver(booked(7))
    assert await deliver(booked(7, user_id=OTHER)) is Outcome.DEAD_LETTERED
    assert dead_letters.reasons == [
        f"session 7 is booked for client {CLIENT} with trainer {TRAINER}, "
        f"not client {OTHER} with trainer {TRAINER}"
    ]
    assert await known_sessions(runtime) == [(7, CLIENT, TRAINER, "scheduled")]


async def test_a_status_event_naming_another_trainer_is_dead_lettered_and_changes_nothing(
    deliver: Deliver, runtime: ServiceRuntime, dead_letters: RecordingDeadLetters
) -> None:
    await deliver(booked(7))
    assert await deliver(moved(SessionCancelled, 7, trainer_id=OTHER)) is Outcome.DEAD_LETTERED
    assert dead_letters.reasons[0].endswith(f"not client {CLIENT} with trainer {OTHER}")
    assert await known_sessions(runtime) == [(7, CLIENT, TRAINER, "scheduled")]


# --- trainer-led workouts and what the service knows ------------------------------------


async def test_a_workout_for_a_session_not_known_yet_is_accepted(
    api: AsyncClient, runtime: ServiceRuntime
) -> None:
    response = await api.post(SESSIONS, json=trainer_led(7))
    assert response.status_code == 201
    assert len(await announced(runtime, WorkoutLogged)) == 1


@pytest.mark.parametrize("story", [[], [SessionStarted], [SessionStarted, SessionCompleted]])
async def test_a_workout_for_a_booked_started_or_completed_session_is_accepted(
    deliver: Deliver, api: AsyncClient, story: list[type[Any]]
) -> None:
    await deliver(booked(7))
    for event in story:
        await deliver(moved(event, 7))
    assert (await api.post(SESSIONS, json=trainer_led(7))).status_code == 201


@pytest.mark.parametrize(
    ("ended", "reason"),
    [
        (SessionCancelled, "session 7 was cancelled: no workout can be delivered for it"),
        (SessionNoShow, "session 7 was a no-show: no workout can be delivered for it"),
    ],
)
async def test_a_workout_for_a_cancelled_or_missed_session_is_a_409(
    deliver: Deliver, api: AsyncClient, runtime: ServiceRuntime, ended: type[Any], reason: str
) -> None:
    await deliver(booked(7))
    await deliver(moved(ended, 7))
    response = await api.post(SESSIONS, json=trainer_led(7))
    assert (response.status_code, response.json()) == (409, {"detail": reason})
    assert await announced(runtime, WorkoutLogged) == []
    listed = await api.get(SESSIONS, params={"userId": CLIENT})
    assert listed.json() == []


async def test_a_workout_cancelled_before_its_booking_arrived_is_still_refused(
    deliver: Deliver, api: AsyncClient
) -> None:
    await deliver(moved(SessionCancelled, 7))
    assert (await api.post(SESSIONS, json=trainer_led(7))).status_code == 409


@pytest.mark.parametrize(
    ("user_id", "trainer_id"), [(OTHER, TRAINER), (CLIENT, OTHER)], ids=["client", "trainer"]
)
async def test_a_workout_for_another_clients_or_trainers_session_is_a_422_naming_the_mismatch(
    deliver: Deliver, api: AsyncClient, runtime: ServiceRuntime, user_id: int, trainer_id: int
) -> None:
    await deliver(booked(7))
    response = await api.post(SESSIONS, json=trainer_led(7, user_id, trainer_id))
    assert response.status_code == 422
    assert response.json() == {
        "detail": f"session 7 is booked for client {CLIENT} with trainer {TRAINER}, "
        f"not client {user_id} with trainer {trainer_id}"
    }
    assert await announced(runtime, WorkoutLogged) == []


async def test_solo_workouts_are_never_checked_against_sessions(
    deliver: Deliver, api: AsyncClient
) -> None:
    await deliver(booked(7))
    await deliver(moved(SessionCancelled, 7))
    response = await api.post(SESSIONS, json={"userId": OTHER, "title": "Home workout"})
    assert response.status_code == 201


@pytest.mark.parametrize("target", ["in_progress", "completed"])
async def test_a_planned_trainer_led_workout_cannot_start_or_complete_once_its_session_is_cancelled(
    deliver: Deliver, api: AsyncClient, runtime: ServiceRuntime, target: str
) -> None:
    await deliver(booked(7))
    workout = (await api.post(SESSIONS, json=trainer_led(7, status="planned"))).json()
    await deliver(moved(SessionCancelled, 7))
    response = await api.patch(f"{SESSIONS}/{workout['id']}", json={"status": target})
    assert (response.status_code, response.json()) == (
        409,
        {"detail": "session 7 was cancelled: no workout can be delivered for it"},
    )
    assert (await api.get(f"{SESSIONS}/{workout['id']}")).json()["status"] == "planned"
    assert await announced(runtime, WorkoutStatusChanged) == []


@pytest.mark.parametrize("target", ["skipped", "cancelled"])
async def test_a_trainer_led_workout_of_a_cancelled_session_can_still_be_called_off(
    deliver: Deliver, api: AsyncClient, runtime: ServiceRuntime, target: str
) -> None:
    workout = (await api.post(SESSIONS, json=trainer_led(7, status="planned"))).json()
    await deliver(moved(SessionCancelled, 7))
    response = await api.patch(f"{SESSIONS}/{workout['id']}", json={"status": target})
    assert (response.status_code, response.json()["status"]) == (200, target)
    assert len(await announced(runtime, WorkoutStatusChanged)) == 1


async def test_a_trainer_led_workout_cannot_start_once_its_session_turns_out_another_clients(
    deliver: Deliver, api: AsyncClient
) -> None:
    workout = (await api.post(SESSIONS, json=trainer_led(7, status="planned"))).json()
    await deliver(booked(7, user_id=OTHER))
    response = await api.patch(f"{SESSIONS}/{workout['id']}", json={"status": "in_progress"})
    assert response.status_code == 409
    assert response.json()["detail"].startswith(f"session 7 is booked for client {OTHER}")


# --- whether a workout's session is known ---------------------------------------------


async def test_a_workout_for_a_session_not_known_yet_is_accepted_and_says_so(
    deliver: Deliver, api: AsyncClient
) -> None:
    response = await api.post(SESSIONS, json=trainer_led(7))
    assert (response.status_code, response.json()["sessionKnown"]) == (201, False)
    workout = f"{SESSIONS}/{response.json()['id']}"
    assert (await api.get(workout)).json()["sessionKnown"] is False

    await deliver(booked(7))
    assert (await api.get(workout)).json()["sessionKnown"] is True
    [listed] = (await api.get(SESSIONS, params={"userId": CLIENT})).json()
    assert listed["sessionKnown"] is True


async def test_a_workout_for_a_known_session_says_it_is_known(
    deliver: Deliver, api: AsyncClient
) -> None:
    await deliver(booked(7))
    response = await api.post(SESSIONS, json=trainer_led(7, status="planned"))
    assert (response.status_code, response.json()["sessionKnown"]) == (201, True)
    moved_on = await api.patch(f"{SESSIONS}/{response.json()['id']}", json={"status": "completed"})
    assert moved_on.json()["sessionKnown"] is True


async def test_a_solo_workout_has_no_session_to_know(api: AsyncClient) -> None:
    logged = (await api.post(SESSIONS, json={"userId": CLIENT, "title": "Run"})).json()
    assert logged["sessionKnown"] is None
    assert (await api.get(f"{SESSIONS}/{logged['id']}")).json()["sessionKnown"] is None
