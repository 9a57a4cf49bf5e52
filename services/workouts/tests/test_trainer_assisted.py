"""Trainer-assisted workouts on a real database: a plan followed alone, logged by the client
or by the trainer who gave it (for a client they train), read by both, announced as
`WorkoutLogged` version 2 while solo workouts stay version 1."""

from __future__ import annotations

from typing import Any

import pytest
from httpx import AsyncClient

from contracts.events import WorkoutLogged
from contracts.identity import Role
from ops.identity import LocalIdentity
from servicekit.runtime import ServiceRuntime
from testkit.events import CLIENT, TRAINER, booked
from testkit.helpers import Deliver, outbox_events

pytestmark = pytest.mark.infra

SESSIONS = "/api/workout/sessions"
OTHER_CLIENT, OTHER_TRAINER = 124, 457


def assisted(user_id: int = CLIENT, trainer_id: int = TRAINER, **fields: Any) -> dict[str, Any]:
    return {
        "userId": user_id,
        "sessionType": "trainer-assisted",
        "trainerId": trainer_id,
        "planId": "strength-base",
        "title": "Plan, Monday",
        "date": "2026-03-02T07:00:00Z",
        **fields,
    }


def as_(identity: LocalIdentity, role: Role, subject: int) -> dict[str, str]:
    return {"authorization": f"Bearer {identity.token(role, str(subject))}"}


async def test_a_client_logs_a_trainer_assisted_workout_announced_as_version_2(
    api: AsyncClient, runtime: ServiceRuntime, identity: LocalIdentity
) -> None:
    response = await api.post(SESSIONS, json=assisted(), headers=as_(identity, Role.CLIENT, CLIENT))
    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["sessionType"], body["trainerId"], body["planId"], body["sessionId"]) == (
        "trainer-assisted",
        TRAINER,
        "strength-base",
        None,
    )
    assert body["sessionKnown"] is None
    read = await api.get(f"{SESSIONS}/{body['id']}", headers=as_(identity, Role.CLIENT, CLIENT))
    assert read.json() == body
    solo = await api.post(SESSIONS, json={"userId": CLIENT, "title": "Run"})
    assert solo.status_code == 201
    versions = {
        event.payload.session_type: event.envelope.dataversion
        for event in await outbox_events(runtime.database)
        if isinstance(event.payload, WorkoutLogged)
    }
    assert versions == {"trainer-assisted": "2", "solo": "1"}


async def test_the_trainer_who_gave_the_plan_logs_reads_and_moves_it_for_a_client_they_train(
    api: AsyncClient, deliver: Deliver, identity: LocalIdentity
) -> None:
    await deliver(booked(7, CLIENT, TRAINER))
    trainer = as_(identity, Role.TRAINER, TRAINER)
    logged = await api.post(SESSIONS, json=assisted(status="planned"), headers=trainer)
    assert logged.status_code == 201, logged.text
    path = f"{SESSIONS}/{logged.json()['id']}"
    assert (await api.get(path, headers=trainer)).status_code == 200
    listed = await api.get(SESSIONS, params={"userId": CLIENT}, headers=trainer)
    assert [w["id"] for w in listed.json()] == [logged.json()["id"]]
    moved = await api.patch(path, json={"status": "completed"}, headers=trainer)
    assert (moved.status_code, moved.json()["status"]) == (200, "completed")
    # Another trainer neither reads nor moves it.
    other = as_(identity, Role.TRAINER, OTHER_TRAINER)
    assert (await api.get(path, headers=other)).status_code == 404
    assert (await api.patch(path, json={"status": "skipped"}, headers=other)).status_code == 404


@pytest.mark.parametrize(
    ("role", "caller", "workout"),
    [
        (Role.CLIENT, OTHER_CLIENT, assisted()),  # a client for another client
        (Role.TRAINER, TRAINER, assisted(trainer_id=OTHER_TRAINER)),  # naming another trainer
        (Role.TRAINER, TRAINER, assisted(user_id=OTHER_CLIENT)),  # a client they do not train
    ],
    ids=["client-for-another", "trainer-naming-another", "trainer-for-untrained-client"],
)
async def test_each_door_a_trainer_assisted_workout_may_not_pass_is_shut(
    api: AsyncClient,
    runtime: ServiceRuntime,
    deliver: Deliver,
    identity: LocalIdentity,
    role: Role,
    caller: int,
    workout: dict[str, Any],
) -> None:
    await deliver(booked(7, CLIENT, TRAINER))
    response = await api.post(SESSIONS, json=workout, headers=as_(identity, role, caller))
    assert response.status_code == 403, response.text
    assert "trainer-assisted workouts naming themselves" in response.json()["detail"]
    assert [e for e in await outbox_events(runtime.database) if e.type == "WorkoutLogged"] == []


async def test_without_a_token_it_is_401(api: AsyncClient) -> None:
    response = await api.post(SESSIONS, json=assisted(), headers={"authorization": ""})
    assert response.status_code == 401
