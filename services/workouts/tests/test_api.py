"""The workouts API on a real database: logging workouts with their exercises and totals,
reading them back, moving them along, and what each change announces."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from httpx import AsyncClient
from sqlalchemy import func, select

from contracts.events import EventPayload, WorkoutLogged, WorkoutStatusChanged
from contracts.identity import Role
from ops.identity import LocalIdentity
from servicekit.runtime import ServiceRuntime
from servicekit.tables import outbox
from testkit.helpers import outbox_events
from workouts.models import ExerciseRow, SetRow, WorkoutRow

pytestmark = pytest.mark.infra

SESSIONS = "/api/workout/sessions"
CLIENT, TRAINER = 123, 456

CHEST_DAY: dict[str, Any] = {
    "userId": CLIENT,
    "title": "Morning Chest Day",
    "date": "2026-01-12T07:30:00+01:00",
    "duration": 55,
    "intensity": 7,
    "exercises": [
        {"name": "Bench press", "sets": [{"reps": 10, "weight": 60}, {"reps": 8, "weight": 70}]},
        {"name": "Push-ups", "sets": [{"reps": 20}, {"reps": 15, "weight": None}]},
    ],
}


def trainer_led(session_id: int = 789, **fields: Any) -> dict[str, Any]:
    return {
        "userId": CLIENT,
        "sessionType": "trainer-led",
        "sessionId": session_id,
        "trainerId": TRAINER,
        "title": "Personal Training Session",
        **fields,
    }


async def log(api: AsyncClient, **fields: Any) -> dict[str, Any]:
    response = await api.post(SESSIONS, json={"userId": CLIENT, "title": "Workout", **fields})
    assert response.status_code == 201, response.json()
    body: dict[str, Any] = response.json()
    return body


async def announced(runtime: ServiceRuntime, kind: type[EventPayload] = EventPayload) -> list[Any]:
    return [e.payload for e in await outbox_events(runtime.database) if isinstance(e.payload, kind)]


async def stored_rows(runtime: ServiceRuntime) -> tuple[int, int, int]:
    async with runtime.database.transaction() as db:
        return (
            await db.scalar(select(func.count()).select_from(WorkoutRow)) or 0,
            await db.scalar(select(func.count()).select_from(ExerciseRow)) or 0,
            await db.scalar(select(func.count()).select_from(SetRow)) or 0,
        )


# --- logging a workout ------------------------------------------------------------------


async def test_a_solo_workout_is_logged_with_its_exercises_and_computed_totals(
    api: AsyncClient,
) -> None:
    response = await api.post(SESSIONS, json=CHEST_DAY)
    assert response.status_code == 201
    body = response.json()
    uuid.UUID(body["id"])
    assert body["createdAt"] == body["updatedAt"]
    assert {k: v for k, v in body.items() if k not in ("id", "createdAt", "updatedAt")} == {
        "userId": CLIENT,
        "title": "Morning Chest Day",
        "date": "2026-01-12T06:30:00Z",
        "duration": 55,
        "intensity": 7,
        "status": "completed",
        "sessionType": "solo",
        "sessionId": None,
        "trainerId": None,
        "planId": None,
        "groupSize": None,
        "sessionKnown": None,
        "totalSets": 4,
        "totalReps": 53,
        "totalWeight": 10 * 60 + 8 * 70,
        # completed: 10 + 4 sets + 53 // 10 reps + 1160 // 100 weight
        "experiencePoints": 10 + 4 + 5 + 11,
        "exercises": [
            {
                "order": 1,
                "name": "Bench press",
                "sets": [
                    {"order": 1, "reps": 10, "weight": 60.0},
                    {"order": 2, "reps": 8, "weight": 70.0},
                ],
            },
            {
                "order": 2,
                "name": "Push-ups",
                "sets": [
                    {"order": 1, "reps": 20, "weight": None},
                    {"order": 2, "reps": 15, "weight": None},
                ],
            },
        ],
    }


async def test_a_workout_is_solo_completed_and_dated_now_unless_told_otherwise(
    api: AsyncClient,
) -> None:
    body = await log(api)
    assert (body["sessionType"], body["sessionId"], body["trainerId"]) == ("solo", None, None)
    assert body["status"] == "completed"
    assert body["date"] == body["createdAt"]
    assert (body["exercises"], body["totalSets"], body["experiencePoints"]) == ([], 0, 10)


async def test_null_optional_fields_mean_their_defaults(api: AsyncClient) -> None:
    body = await log(
        api, sessionType=None, status=None, date=None, exercises=[{"name": "Run", "sets": None}]
    )
    assert (body["sessionType"], body["status"]) == ("solo", "completed")
    assert body["exercises"] == [{"order": 1, "name": "Run", "sets": []}]


async def test_a_trainer_led_workout_names_its_session_and_trainer(api: AsyncClient) -> None:
    response = await api.post(SESSIONS, json=trainer_led(789))
    assert response.status_code == 201
    body = response.json()
    assert (body["sessionType"], body["sessionId"], body["trainerId"]) == (
        "trainer-led",
        789,
        TRAINER,
    )


async def test_titles_and_exercise_names_are_trimmed(api: AsyncClient) -> None:
    body = await log(api, title="  Legs  ", exercises=[{"name": " Squat ", "sets": []}])
    assert (body["title"], body["exercises"][0]["name"]) == ("Legs", "Squat")


async def test_the_largest_workout_allowed_is_logged_whole(
    api: AsyncClient, runtime: ServiceRuntime
) -> None:
    exercises = [
        {"name": f"Exercise {n}", "sets": [{"reps": 1000, "weight": 2000}] * 50}
        for n in range(1, 101)
    ]
    body = await log(api, title="x" * 200, exercises=exercises)
    assert (body["totalSets"], body["totalReps"], body["totalWeight"]) == (
        5000,
        5_000_000,
        10_000_000_000,
    )
    assert body["exercises"][99]["sets"][49]["order"] == 50
    assert await stored_rows(runtime) == (1, 100, 5000)


# --- what is refused --------------------------------------------------------------------

TOO_MANY_EXERCISES = [{"name": "Burpees", "sets": []}] * 101
TOO_MANY_SETS = [{"name": "Burpees", "sets": [{"reps": 1}] * 51}]


@pytest.mark.parametrize(
    ("change", "where", "says"),
    [
        (
            {"sessionType": "trainer-led", "sessionId": 789},
            "body",
            "a trainer-led workout requires trainerId",
        ),
        (
            {"sessionType": "trainer-led", "trainerId": TRAINER},
            "body",
            "a trainer-led workout requires sessionId",
        ),
        (
            {"sessionType": "trainer-led"},
            "body",
            "a trainer-led workout requires sessionId and trainerId",
        ),
        ({"sessionId": 789}, "body", "a solo workout has no sessionId"),
        ({"sessionType": "solo", "trainerId": TRAINER}, "body", "a solo workout has no trainerId"),
        ({"sessionType": "yoga"}, "body.sessionType", "unknown session type 'yoga'"),
        (
            {"sessionType": "group", "sessionId": 789},
            "body",
            "a group workout requires trainerId",
        ),
        (
            {"sessionType": "group", "sessionId": 789, "trainerId": TRAINER, "planId": "p"},
            "body",
            "a group workout has no planId",
        ),
        (
            {"sessionType": "group", "sessionId": 789, "trainerId": TRAINER, "groupSize": 101},
            "body.groupSize",
            "less than or equal to 100",
        ),
        (
            {"sessionType": "trainer-assisted", "trainerId": TRAINER},
            "body",
            "a trainer-assisted workout requires planId",
        ),
        ({"status": "done"}, "body.status", "'planned', 'in_progress', 'completed'"),
        ({"title": "x" * 201}, "body.title", "at most 200 characters"),
        ({"title": ""}, "body.title", "at least 1 character"),
        ({"title": "   "}, "body.title", "at least 1 character"),
        ({"exercises": TOO_MANY_EXERCISES}, "body.exercises", "at most 100 items"),
        ({"exercises": TOO_MANY_SETS}, "body.exercises.0.sets", "at most 50 items"),
        (
            {"exercises": [{"name": "Row", "sets": [{"reps": -1}]}]},
            "body.exercises.0.sets.0.reps",
            "greater than or equal to 0",
        ),
        (
            {"exercises": [{"name": "Row", "sets": [{"reps": 5, "weight": -2.5}]}]},
            "body.exercises.0.sets.0.weight",
            "greater than or equal to 0",
        ),
        (
            {"exercises": [{"name": "Row", "sets": [{"reps": 1001}]}]},
            "body.exercises.0.sets.0.reps",
            "less than or equal to 1000",
        ),
        (
            {"exercises": [{"name": "Row", "sets": [{"reps": 1, "weight": 2000.5}]}]},
            "body.exercises.0.sets.0.weight",
            "less than or equal to 2000",
        ),
        ({"exercises": [{"name": "", "sets": []}]}, "body.exercises.0.name", "at least 1"),
        ({"date": "2026-01-15T10:00:00"}, "body.date", "timezone info"),
        ({"date": "yesterday"}, "body.date", "valid datetime"),
        ({"date": "0001-01-01T00:00:00+01:00"}, "body.date", "must lie between 1900 and 8999"),
        # Taken once, then refused by the event it makes: a 500.
        ({"date": "1065-06-23T04:05:36+15:46"}, "body.date", "must lie between 1900 and 8999"),
        ({"date": 0}, "body.date", "must be an RFC 3339 date-time string"),
        ({"userId": 0}, "body.userId", "greater than 0"),
        ({"userId": 2**63}, "body.userId", "less than or equal to 9223372036854775807"),
        ({"userId": "abc"}, "body.userId", "valid integer"),
        (
            {"sessionType": "trainer-led", "sessionId": 2**63, "trainerId": TRAINER},
            "body.sessionId",
            "less than or equal to",
        ),
        (
            {"sessionType": "trainer-led", "sessionId": 789, "trainerId": -4},
            "body.trainerId",
            "greater than 0",
        ),
        ({"duration": 0}, "body.duration", "greater than or equal to 1"),
        ({"duration": 1441}, "body.duration", "less than or equal to 1440"),
        ({"intensity": 0}, "body.intensity", "greater than or equal to 1"),
        ({"intensity": 11}, "body.intensity", "less than or equal to 10"),
    ],
)
async def test_a_bad_workout_gets_a_422_saying_what_is_wrong_and_nothing_is_stored(
    api: AsyncClient, runtime: ServiceRuntime, change: dict[str, Any], where: str, says: str
) -> None:
    response = await api.post(SESSIONS, json={"userId": CLIENT, "title": "Workout", **change})
    assert response.status_code == 422
    problems = [
        (".".join(str(part) for part in problem["loc"]), problem["msg"])
        for problem in response.json()["detail"]
    ]
    assert any(loc == where and says in msg for loc, msg in problems), problems
    assert await stored_rows(runtime) == (0, 0, 0)
    assert await announced(runtime) == []


@pytest.mark.parametrize("missing", ["userId", "title"])
async def test_a_workout_without_its_client_or_title_gets_a_422(
    api: AsyncClient, missing: str
) -> None:
    body = {"userId": CLIENT, "title": "Workout"}
    del body[missing]
    response = await api.post(SESSIONS, json=body)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", missing]


# --- reading workouts -------------------------------------------------------------------


@pytest.mark.parametrize(
    "workout",
    [
        CHEST_DAY,
        trainer_led(status="planned", date="2026-01-12T18:00:00-05:00", duration=60),
        {
            "userId": CLIENT,
            "title": "Core",
            "exercises": [{"name": "Plank"}, {"name": "Crunches", "sets": [{"reps": 30}]}],
        },
        {"userId": CLIENT, "title": "Walk"},
    ],
    ids=["weights", "trainer-led", "exercise-without-sets", "no-exercises"],
)
async def test_a_workout_reads_back_as_it_was_logged(
    api: AsyncClient, workout: dict[str, Any]
) -> None:
    logged = (await api.post(SESSIONS, json=workout)).json()
    response = await api.get(f"{SESSIONS}/{logged['id']}")
    assert response.status_code == 200
    assert response.json() == logged


async def test_an_unknown_workout_is_a_404_and_a_malformed_id_a_422(api: AsyncClient) -> None:
    unknown = uuid.uuid4()
    response = await api.get(f"{SESSIONS}/{unknown}")
    assert response.status_code == 404
    assert response.json() == {"detail": f"no workout session {unknown}"}
    assert (await api.get(f"{SESSIONS}/42")).status_code == 422
    assert (
        await api.patch(f"{SESSIONS}/not-a-uuid", json={"status": "planned"})
    ).status_code == 422


async def test_a_clients_workouts_are_listed_newest_first(api: AsyncClient) -> None:
    dates = ["2026-01-05T10:00:00Z", "2026-01-12T10:00:00Z", "2026-01-09T10:00:00Z"]
    ids = {date: (await log(api, date=date))["id"] for date in dates}
    await log(api, userId=999, date="2026-01-20T10:00:00Z")
    response = await api.get(SESSIONS, params={"userId": CLIENT})
    assert response.status_code == 200
    assert [w["id"] for w in response.json()] == [ids[d] for d in sorted(dates, reverse=True)]
    assert response.json()[0]["exercises"] == []


async def test_the_list_pages_with_limit_and_offset(api: AsyncClient) -> None:
    for day in range(1, 6):
        await log(api, date=f"2026-01-0{day}T10:00:00Z", title=f"Day {day}")
    page = await api.get(SESSIONS, params={"userId": CLIENT, "limit": 2, "offset": 1})
    assert [w["title"] for w in page.json()] == ["Day 4", "Day 3"]
    beyond = await api.get(SESSIONS, params={"userId": CLIENT, "offset": 5})
    assert beyond.json() == []


async def test_the_list_filters_by_status_and_session_type(api: AsyncClient) -> None:
    solo = await log(api)
    planned = await log(api, status="planned")
    led = (await api.post(SESSIONS, json=trainer_led(789))).json()
    by_type = await api.get(SESSIONS, params={"userId": CLIENT, "sessionType": "trainer-led"})
    assert [w["id"] for w in by_type.json()] == [led["id"]]
    completed_solo = await api.get(
        SESSIONS, params={"userId": CLIENT, "status": "completed", "sessionType": "solo"}
    )
    assert [w["id"] for w in completed_solo.json()] == [solo["id"]]
    assert planned["id"] not in {w["id"] for w in completed_solo.json()}


async def test_a_client_without_workouts_has_an_empty_list(api: AsyncClient) -> None:
    response = await api.get(SESSIONS, params={"userId": 404})
    assert (response.status_code, response.json()) == (200, [])


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"userId": 0},
        {"userId": 2**63},
        {"userId": "abc"},
        {"userId": CLIENT, "limit": 0},
        {"userId": CLIENT, "limit": 101},
        {"userId": CLIENT, "offset": -1},
        {"userId": CLIENT, "offset": 100_001},
        {"userId": CLIENT, "status": "done"},
        {"userId": CLIENT, "sessionType": "yoga"},
    ],
)
async def test_a_bad_list_query_gets_a_422(api: AsyncClient, params: dict[str, Any]) -> None:
    response = await api.get(SESSIONS, params=params)
    assert response.status_code == 422
    assert response.json()["detail"]


# --- moving a workout along -------------------------------------------------------------


async def test_a_planned_workout_starts_then_completes_and_earns_its_points(
    api: AsyncClient,
) -> None:
    planned = (await api.post(SESSIONS, json={**CHEST_DAY, "status": "planned"})).json()
    assert planned["experiencePoints"] == 0
    started = await api.patch(f"{SESSIONS}/{planned['id']}", json={"status": "in_progress"})
    assert (started.status_code, started.json()["status"]) == (200, "in_progress")
    assert started.json()["experiencePoints"] == 0
    assert started.json()["updatedAt"] > planned["updatedAt"]
    done = await api.patch(f"{SESSIONS}/{planned['id']}", json={"status": "completed"})
    assert (done.status_code, done.json()["experiencePoints"]) == (200, 10 + 4 + 5 + 11)
    assert (await api.get(f"{SESSIONS}/{planned['id']}")).json() == done.json()


@pytest.mark.parametrize(
    ("path", "refused"),
    [
        (["completed"], "planned"),
        (["completed"], "in_progress"),
        (["skipped"], "completed"),
        (["cancelled"], "in_progress"),
        (["in_progress"], "skipped"),
        (["in_progress"], "planned"),
    ],
)
async def test_a_change_the_lifecycle_forbids_is_a_409(
    api: AsyncClient, runtime: ServiceRuntime, path: list[str], refused: str
) -> None:
    workout = await log(api, status="planned")
    for status in path:
        await api.patch(f"{SESSIONS}/{workout['id']}", json={"status": status})
    before = await announced(runtime)
    response = await api.patch(f"{SESSIONS}/{workout['id']}", json={"status": refused})
    assert response.status_code == 409
    assert response.json()["detail"].startswith(
        f"the workout is {path[-1]} and cannot become {refused}"
    )
    assert (await api.get(f"{SESSIONS}/{workout['id']}")).json()["status"] == path[-1]
    assert await announced(runtime) == before


@pytest.mark.parametrize(("role", "owner"), [(Role.CLIENT, CLIENT), (Role.TRAINER, TRAINER)])
async def test_staff_call_off_a_completed_workout_its_owner_may_not(
    api: AsyncClient, runtime: ServiceRuntime, identity: LocalIdentity, role: Role, owner: int
) -> None:
    workout = await log(api, userId=owner)
    path = f"{SESSIONS}/{workout['id']}"
    as_owner = {"authorization": f"Bearer {identity.token(role, str(owner))}"}
    refused = await api.patch(path, json={"status": "cancelled"}, headers=as_owner)
    assert (refused.status_code, refused.json()["detail"]) == (
        409,
        "the workout is completed and cannot become cancelled (completed is final)",
    )
    assert await announced(runtime, WorkoutStatusChanged) == []

    called_off = await api.patch(path, json={"status": "cancelled"})
    assert called_off.status_code == 200
    assert (called_off.json()["status"], called_off.json()["experiencePoints"]) == ("cancelled", 0)
    [changed] = await announced(runtime, WorkoutStatusChanged)
    assert (changed.previous_status, changed.status) == ("completed", "cancelled")


async def test_asking_for_the_status_a_workout_has_changes_nothing(
    api: AsyncClient, runtime: ServiceRuntime
) -> None:
    workout = await log(api)
    response = await api.patch(f"{SESSIONS}/{workout['id']}", json={"status": "completed"})
    assert (response.status_code, response.json()) == (200, workout)
    assert len(await announced(runtime, WorkoutStatusChanged)) == 0


async def test_changing_an_unknown_workout_is_a_404(api: AsyncClient) -> None:
    response = await api.patch(f"{SESSIONS}/{uuid.uuid4()}", json={"status": "completed"})
    assert response.status_code == 404


@pytest.mark.parametrize("body", [{}, {"status": "done"}, {"status": None}])
async def test_a_bad_status_change_gets_a_422(api: AsyncClient, body: dict[str, Any]) -> None:
    workout = await log(api, status="planned")
    response = await api.patch(f"{SESSIONS}/{workout['id']}", json=body)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "status"]


# --- what the service announces ---------------------------------------------------------


async def test_a_logged_workout_is_announced_whole_in_the_same_transaction(
    api: AsyncClient, runtime: ServiceRuntime
) -> None:
    body = (await api.post(SESSIONS, json=CHEST_DAY)).json()
    [event] = await outbox_events(runtime.database)
    assert event.type == "WorkoutLogged"
    assert event.envelope.source == "/swanstudios/workouts"
    logged = event.payload
    assert isinstance(logged, WorkoutLogged)
    assert logged.to_json_dict() == {
        "workoutId": body["id"],
        "userId": CLIENT,
        "sessionType": "solo",
        "sessionId": None,
        "trainerId": None,
        "planId": None,
        "groupSize": None,
        "title": "Morning Chest Day",
        "date": "2026-01-12T06:30:00Z",
        "duration": 55,
        "intensity": 7,
        "status": "completed",
        "exercises": [
            {
                "name": "Bench press",
                "sets": [{"reps": 10, "weight": 60.0}, {"reps": 8, "weight": 70.0}],
            },
            {
                "name": "Push-ups",
                "sets": [{"reps": 20, "weight": None}, {"reps": 15, "weight": None}],
            },
        ],
        "totalWeight": 1160.0,
        "totalReps": 53,
        "totalSets": 4,
        "experiencePoints": 30,
    }


async def test_events_go_to_the_workouts_topic_keyed_by_the_client(
    api: AsyncClient, runtime: ServiceRuntime
) -> None:
    await api.post(SESSIONS, json=trainer_led(789))
    async with runtime.database.transaction() as db:
        [(topic, key)] = (await db.execute(select(outbox.c.topic, outbox.c.key))).all()
    assert topic == runtime.settings.kafka_topic_prefix + "workouts.workout-sessions"
    assert key == str(CLIENT).encode()


async def test_a_trainer_led_workout_is_announced_with_its_session_and_trainer(
    api: AsyncClient, runtime: ServiceRuntime
) -> None:
    await api.post(SESSIONS, json=trainer_led(789, status="in_progress"))
    [logged] = await announced(runtime, WorkoutLogged)
    assert (logged.session_type, logged.session_id, logged.trainer_id, logged.status) == (
        "trainer-led",
        789,
        TRAINER,
        "in_progress",
    )


async def test_a_status_change_is_announced_with_the_previous_status(
    api: AsyncClient, runtime: ServiceRuntime
) -> None:
    workout = (await api.post(SESSIONS, json=trainer_led(789, status="planned"))).json()
    await api.patch(f"{SESSIONS}/{workout['id']}", json={"status": "in_progress"})
    await api.patch(f"{SESSIONS}/{workout['id']}", json={"status": "completed"})
    changes = await announced(runtime, WorkoutStatusChanged)
    assert [change.to_json_dict() for change in changes] == [
        {
            "workoutId": workout["id"],
            "userId": CLIENT,
            "sessionType": "trainer-led",
            "sessionId": 789,
            "trainerId": TRAINER,
            "planId": None,
            "groupSize": None,
            "status": status,
            "previousStatus": previous,
        }
        for previous, status in [("planned", "in_progress"), ("in_progress", "completed")]
    ]


async def test_a_solo_status_change_names_no_session(
    api: AsyncClient, runtime: ServiceRuntime
) -> None:
    workout = await log(api, status="planned")
    await api.patch(f"{SESSIONS}/{workout['id']}", json={"status": "skipped"})
    [change] = await announced(runtime, WorkoutStatusChanged)
    assert (change.session_type, change.session_id, change.trainer_id) == ("solo", None, None)
    assert (change.previous_status, change.status) == ("planned", "skipped")


@pytest.mark.parametrize(
    ("field", "number"),
    [("weight", "NaN"), ("weight", "Infinity"), ("weight", "-Infinity"), ("reps", "NaN")],
)
async def test_a_number_that_is_not_a_number_gets_a_422_not_a_500(
    api: AsyncClient, runtime: ServiceRuntime, field: str, number: str
) -> None:
    exercise_set = {"reps": 5, field: number}
    body = json.dumps(
        {
            "userId": CLIENT,
            "title": "Workout",
            "exercises": [{"name": "Row", "sets": [exercise_set]}],
        }
    ).replace(f'"{number}"', number)
    response = await api.post(SESSIONS, content=body, headers={"content-type": "application/json"})
    assert response.status_code == 422
    [problem] = response.json()["detail"]
    assert (problem["loc"], problem["input"]) == (
        ["body", "exercises", 0, "sets", 0, field],
        number,
    )
    assert await stored_rows(runtime) == (0, 0, 0)


async def test_the_api_schema_documents_the_experience_points_rule_and_session_type_rule(
    api: AsyncClient,
) -> None:
    schemas = (await api.get("/openapi.json")).json()["components"]["schemas"]
    points = schemas["WorkoutSession"]["properties"]["experiencePoints"]["description"]
    assert points.startswith("Only a completed workout earns experience points: 10")
    request = schemas["LogWorkoutRequest"]
    rules = {
        rule["if"]["properties"]["sessionType"]["const"]: rule["then"]["required"]
        for rule in request["allOf"]
        if "properties" in rule["if"]
    }
    assert rules == {
        "trainer-led": ["sessionId", "trainerId"],
        "trainer-assisted": ["planId", "trainerId"],
        "group": ["sessionId", "trainerId"],
    }
