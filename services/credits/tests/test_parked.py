"""Parked deductions, on a real database: staff see each one and what resolves it, the
gauges count them from the database, and each way out works: the booking arrives (the
credit is deducted) or the workout is cancelled (the deduction is withdrawn, never
charged, in whatever order a rebuild reads the inputs)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime

import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select, text

from contracts.events import (
    CreditDeductionRejected,
    SessionCompleted,
    SessionCreditDeducted,
    WorkoutStatusChanged,
)
from contracts.identity import Role
from credits.main import create_app
from credits.models import WithdrawnDeduction
from credits.rules import withdrawal_id
from credits.settings import Settings
from servicekit.consumer import Outcome
from servicekit.runtime import ServiceRuntime
from testkit.events import CLIENT, TRAINER, booked, moved, purchase, workout
from testkit.helpers import Deliver, consumed, outbox_events, outbox_records

from .test_ledger import OTHER, announced, balance

pytestmark = pytest.mark.infra

PENDING = "/api/credits/pending"


def cancelled(
    workout_id: uuid.UUID, session_id: int, previous: str = "completed"
) -> WorkoutStatusChanged:
    return WorkoutStatusChanged(
        workout_id=workout_id,
        user_id=CLIENT,
        session_type="trainer-led",
        session_id=session_id,
        trainer_id=TRAINER,
        status="cancelled",
        previous_status=previous,
    )


async def parked(api: AsyncClient) -> list[tuple[int, str]]:
    """Each parked deduction's session and workout, in the order listed."""
    response = await api.get(PENDING)
    assert response.status_code == 200, response.text
    return [(item["sessionId"], item["workoutId"]) for item in response.json()]


async def gauges(api: AsyncClient) -> dict[str, float]:
    response = await api.get("/metrics")
    return {
        sample.name: sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
        if sample.name.startswith("credits_parked_")
    }


async def test_staff_see_each_parked_deduction_oldest_first_with_what_resolves_it(
    deliver: Deliver, api: AsyncClient
) -> None:
    await deliver(purchase())
    first, second = workout(7), workout(8, user_id=OTHER)
    await deliver(first, event_id="log-7")
    await deliver(second, event_id="log-8")

    [seven, eight] = (await api.get(PENDING)).json()
    assert {key: seven[key] for key in seven if key not in ("id", "parkedAt", "ageSeconds")} == {
        "sessionId": 7,
        "userId": CLIENT,
        "trainerId": TRAINER,
        "workoutId": str(first.workout_id),
        "cause": "workout-logged",
        "causedBy": "log-7",
    }
    assert datetime.fromisoformat(seven["parkedAt"]).tzinfo is not None
    assert seven["ageSeconds"] >= 0
    assert (eight["sessionId"], eight["userId"], eight["id"] > seven["id"]) == (8, OTHER, True)
    assert await balance(api) == (10, 0, 10)


async def test_the_booking_arriving_applies_its_parked_deduction(
    deliver: Deliver, api: AsyncClient, runtime: ServiceRuntime
) -> None:
    await deliver(purchase())
    applied, waiting = workout(7), workout(8)
    await deliver(applied)
    await deliver(waiting)
    await deliver(booked(7))

    assert await parked(api) == [(8, str(waiting.workout_id))]
    assert await balance(api) == (10, 1, 9)
    [deducted] = await announced(runtime, SessionCreditDeducted)
    assert (deducted.session_id, deducted.workout_id) == (7, applied.workout_id)


async def test_parked_deductions_come_in_pages_linked_by_next(
    deliver: Deliver, api: AsyncClient
) -> None:
    for session_id in range(1, 6):
        await deliver(workout(session_id))
    pages: list[list[int]] = []
    url: str | None = f"{PENDING}?limit=2"
    while url is not None:
        response = await api.get(url)
        assert response.status_code == 200, response.text
        pages.append([item["sessionId"] for item in response.json()])
        link = response.headers.get("link")
        url = link[link.index("<") + 1 : link.index(">")] if link else None
        if len(pages) == 1:
            # The last one seen is applied before the next page is read: paging goes on.
            await deliver(booked(pages[0][-1]))
    assert pages == [[1, 2], [3, 4], [5]]


@pytest.mark.parametrize("query", ["after=-1", "after=abc", "limit=0", "limit=1001"])
async def test_a_bad_page_of_parked_deductions_is_a_422(api: AsyncClient, query: str) -> None:
    response = await api.get(f"{PENDING}?{query}")
    assert response.status_code == 422
    assert response.json()["detail"]


async def test_only_staff_read_the_parked_deductions(
    deliver: Deliver, as_role: Callable[..., AsyncClient]
) -> None:
    await deliver(booked(1))  # the trainer trains the client, as far as credits knows
    await deliver(workout(7))
    assert (await as_role().get(PENDING)).status_code == 401
    for role, subject in [
        (Role.CLIENT, str(CLIENT)),
        (Role.TRAINER, str(TRAINER)),
        (Role.SERVICE, "kiosk"),
    ]:
        response = await as_role(role, subject).get(PENDING)
        assert response.status_code == 403, (role, response.text)
        assert response.json()["detail"] == "only staff read the parked deductions"
    assert len((await as_role(Role.STAFF, "desk").get(PENDING)).json()) == 1


async def test_pending_is_its_own_route_and_user_ids_keep_theirs(
    deliver: Deliver, api: AsyncClient, as_role: Callable[..., AsyncClient]
) -> None:
    await deliver(purchase())
    assert (await api.get(PENDING)).json() == []
    assert (await api.get(f"/api/credits/{CLIENT}")).json()["remaining"] == 10
    assert (await api.get("/api/credits/pendingx")).status_code == 422
    client = as_role(Role.CLIENT, str(CLIENT))
    assert (await client.get(f"/api/credits/{CLIENT}")).status_code == 200
    assert (await client.get(PENDING)).status_code == 403


async def test_cancelling_a_parked_workout_withdraws_its_deduction_without_charging(
    deliver: Deliver, api: AsyncClient, runtime: ServiceRuntime
) -> None:
    await deliver(purchase())
    logged = workout(7)
    await deliver(logged)
    await deliver(cancelled(logged.workout_id, 7))
    assert await parked(api) == []

    [rejection] = [
        event
        for event in await outbox_events(runtime.database)
        if isinstance(event.payload, CreditDeductionRejected)
    ]
    rejected = rejection.payload
    assert isinstance(rejected, CreditDeductionRejected)
    # Under an id of its own kind: a rebuild tells a withdrawal from other rejections by it.
    assert rejection.id == str(withdrawal_id(logged.workout_id))
    assert (rejected.session_id, rejected.workout_id) == (7, logged.workout_id)
    assert rejected.reason == (
        f"workout {logged.workout_id} was cancelled before session 7 was booked"
    )

    await deliver(booked(7))
    assert await balance(api) == (10, 0, 10)
    await deliver(moved(SessionCompleted, 7))
    # Completing the session is a cause of its own: the withdrawal spares the workout only.
    assert await balance(api) == (10, 1, 9)
    [deducted] = await announced(runtime, SessionCreditDeducted)
    assert (deducted.cause, deducted.workout_id) == ("session-completed", None)


async def test_cancelling_one_workout_withdraws_only_its_own_deduction(
    deliver: Deliver, api: AsyncClient, runtime: ServiceRuntime
) -> None:
    await deliver(purchase())
    by_trainer, by_client = workout(7), workout(7)
    await deliver(by_trainer)
    await deliver(by_client)
    await deliver(cancelled(by_trainer.workout_id, 7))
    assert await parked(api) == [(7, str(by_client.workout_id))]
    await deliver(booked(7))
    assert await balance(api) == (10, 1, 9)
    [deducted] = await announced(runtime, SessionCreditDeducted)
    assert deducted.workout_id == by_client.workout_id


async def test_cancelling_a_workout_whose_credit_was_deducted_changes_nothing(
    deliver: Deliver, api: AsyncClient, runtime: ServiceRuntime
) -> None:
    await deliver(purchase())
    await deliver(booked(7))
    logged = workout(7)
    await deliver(logged)
    assert await deliver(cancelled(logged.workout_id, 7)) is Outcome.APPLIED
    assert await balance(api) == (10, 1, 9)
    assert await announced(runtime, CreditDeductionRejected) == []


async def test_a_withdrawn_workout_is_never_charged_by_a_rebuild_whatever_the_input_order(
    deliver: Deliver, api: AsyncClient, runtime: ServiceRuntime, make_app: Callable[[], FastAPI]
) -> None:
    """Live the workout was cancelled before its booking arrived; the rebuilt copy reads
    the booking first. Having read the ledger topic first, it knows the workout was
    withdrawn; a copy without that history would charge it."""
    logged = workout(7, workout_id=uuid.UUID(int=7))
    inputs = [
        ("buy", purchase()),
        ("log", logged),
        ("cancel", cancelled(logged.workout_id, 7)),
        ("book", booked(7)),
    ]
    for event_id, payload in inputs:
        await deliver(payload, event_id=event_id)
    ledger_topic = await outbox_records(runtime.database)
    assert await balance(api) == (10, 0, 10)

    rebuilt_app, unaware_app = make_app(), make_app()
    rebuilt, unaware = rebuilt_app.state.runtime, unaware_app.state.runtime
    for record in ledger_topic:
        assert await rebuilt.consumer.process(record) is Outcome.APPLIED
    for event_id, payload in [inputs[0], inputs[3], inputs[1], inputs[2]]:
        for copy in (rebuilt, unaware):
            await copy.consumer.process(consumed(payload, event_id=event_id))

    assert await outbox_records(rebuilt.database) == [], "announced again"
    async with rebuilt.database.transaction() as db:
        remembered = list(await db.scalars(select(WithdrawnDeduction.workout_id)))
    assert remembered == [logged.workout_id]
    for copy_app, expected in [(rebuilt_app, (10, 0, 10)), (unaware_app, (10, 1, 9))]:
        async with AsyncClient(
            transport=ASGITransport(app=copy_app), base_url="http://copy", headers=api.headers
        ) as copy_api:
            assert await balance(copy_api) == expected


async def test_the_parked_gauges_are_read_from_the_database_by_every_replica(
    deliver: Deliver, api: AsyncClient, runtime: ServiceRuntime
) -> None:
    assert await gauges(api) == {
        "credits_parked_deductions": 0,
        "credits_parked_deductions_oldest_age_seconds": 0,
    }
    for session_id in (7, 8):
        await deliver(workout(session_id))
    async with runtime.database.transaction() as db:
        await db.execute(
            text(
                "update pending_deductions set received_at = now() - interval '2 hours'"
                " where session_id = 7"
            )
        )

    # Another process on the same database (a replica, or this one restarted) that has
    # consumed nothing itself.
    assert isinstance(runtime.settings, Settings)
    replica = create_app(runtime.settings)
    try:
        async with AsyncClient(
            transport=ASGITransport(app=replica), base_url="http://replica", headers=api.headers
        ) as replica_api:
            for figures in (await gauges(api), await gauges(replica_api)):
                assert figures["credits_parked_deductions"] == 2
                assert figures["credits_parked_deductions_oldest_age_seconds"] >= 7200
            [oldest, _] = (await replica_api.get(PENDING)).json()
            assert oldest["ageSeconds"] >= 7200
    finally:
        await replica.state.runtime.database.dispose()
