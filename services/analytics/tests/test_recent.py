"""The client's recent workouts and ledger entries (`GET /api/analytics/{userId}/recent`),
which the web dashboard lists, read as the usage is; the dashboard in the service's app
(its page and files are tested in `unit/test_dashboard.py`)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi import FastAPI
from httpx import AsyncClient

from contracts.identity import Role
from ops.identity import LocalIdentity
from testkit.events import CLIENT, TRAINER
from testkit.helpers import Deliver

from .stories import (
    OTHER_CLIENT,
    balance,
    caller,
    day,
    deducted,
    expired,
    granted,
    logged,
    restored,
    running_low,
)

pytestmark = pytest.mark.infra


async def test_the_service_serves_the_page_openly_and_outside_its_api_document(
    anonymous: AsyncClient,
) -> None:
    response = await anonymous.get("/dashboard")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert (await anonymous.get("/dashboard/dashboard.js")).status_code == 200
    paths = (await anonymous.get("/openapi.json")).json()["paths"]
    assert not [path for path in paths if path.startswith("/dashboard")]
    assert "/api/analytics/{user_id}/recent" in paths


# --- the recent workouts and ledger entries ---------------------------------------------


async def client_history(deliver: Deliver) -> None:
    await deliver(granted(10), event_id="grant", time=day(0))
    await deliver(logged("solo"), time=day(0))
    await deliver(logged("trainer-led", session_id=7), time=day(1))
    await deliver(deducted(7, 10, 1), event_id="deduct-7", time=day(1))
    await deliver(deducted(8, 10, 2), event_id="deduct-8", time=day(2))
    await deliver(restored(8, 10, 1), event_id="restore-8", time=day(3))
    await deliver(running_low(9, balance(10, 1)), event_id="low", time=day(3))
    await deliver(expired(2, balance(10, 1, expired=2)), event_id="expire", time=day(4))
    await deliver(logged("solo", status="planned"), time=day(5))


async def test_recent_lists_the_clients_ledger_entries_and_completed_workouts_newest_first(
    deliver: Deliver, app: FastAPI, identity: LocalIdentity
) -> None:
    await client_history(deliver)
    # Sent again (a redelivery under the same id): listed once.
    await deliver(granted(10), event_id="grant", time=day(0))

    async with caller(app, identity, Role.CLIENT, CLIENT) as client:
        response = await client.get(f"/api/analytics/{CLIENT}/recent")
    assert response.status_code == 200, response.text
    body = response.json()
    assert [(e["type"], e["change"], e["remaining"], e["sessionId"]) for e in body["ledger"]] == [
        ("CreditsExpired", -2, 7, None),
        ("SessionCreditRestored", 1, 9, 8),
        ("SessionCreditDeducted", -1, 8, 8),
        ("SessionCreditDeducted", -1, 9, 7),
        ("CreditsGranted", 10, 10, None),
    ]
    assert body["ledger"][-2]["detail"] == "workout-logged"
    assert body["ledger"][-1]["at"].startswith(day(0).date().isoformat())
    # Completed ones only (what the chart counts), newest first.
    kinds = [w["sessionType"] for w in body["workouts"]]
    assert sorted(kinds) == ["solo", "trainer-led"]
    assert body["workouts"][0]["trainerId"] in (None, TRAINER)


async def test_recent_keeps_the_latest_ten_of_each(
    deliver: Deliver, app: FastAPI, identity: LocalIdentity
) -> None:
    for n in range(12):
        await deliver(
            deducted(n + 1, 20, n + 1), event_id=f"d{n}", time=day(0) + timedelta(hours=n)
        )
    async with caller(app, identity, Role.CLIENT, CLIENT) as client:
        ledger = (await client.get(f"/api/analytics/{CLIENT}/recent")).json()["ledger"]
    assert [e["sessionId"] for e in ledger] == list(range(12, 2, -1))


async def test_a_client_with_no_history_has_empty_lists(
    app: FastAPI, identity: LocalIdentity
) -> None:
    async with caller(app, identity, Role.CLIENT, CLIENT) as client:
        response = await client.get(f"/api/analytics/{CLIENT}/recent")
    assert response.json() == {"workouts": [], "ledger": []}


#: Who may read a client's recent entries: as the usage (role, subject, client, status).
ACCESS = [
    (Role.CLIENT, CLIENT, CLIENT, 200),
    (Role.CLIENT, CLIENT, OTHER_CLIENT, 403),
    (Role.TRAINER, TRAINER, CLIENT, 200),
    (Role.TRAINER, TRAINER, OTHER_CLIENT, 403),
    (Role.STAFF, "desk", OTHER_CLIENT, 200),
    (Role.SERVICE, "kiosk", CLIENT, 200),
]


@pytest.mark.parametrize(("role", "subject", "user_id", "status"), ACCESS)
async def test_who_may_read_a_clients_recent_entries(
    deliver: Deliver,
    app: FastAPI,
    identity: LocalIdentity,
    role: Role,
    subject: int | str,
    user_id: int,
    status: int,
) -> None:
    await client_history(deliver)  # the deductions name CLIENT and TRAINER together
    async with caller(app, identity, role, subject) as http:
        response = await http.get(f"/api/analytics/{user_id}/recent")
    assert response.status_code == status, response.text
    if status == 403:
        assert "ledger" not in response.text


async def test_recent_without_a_token_is_401(anonymous: AsyncClient) -> None:
    response = await anonymous.get(f"/api/analytics/{CLIENT}/recent")
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
