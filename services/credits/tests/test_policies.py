"""The credit policies on a real database: a month of a hybrid client and of an unlimited
client with a weekly cap, expiries decided by the clock, staff waivers, and a rebuild after
expiries and a policy change that gives the identical ledger."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient

from contracts import events
from contracts.events import CancellationPolicy, EventPayload
from credits import clock
from credits.store import LedgerStore
from servicekit.consumer import Outcome
from servicekit.runtime import ServiceRuntime
from testkit.events import CLIENT, TRAINER, booked, moved, purchase, workout
from testkit.helpers import Deliver, consumed, outbox_events, outbox_records

pytestmark = pytest.mark.infra

MARCH = datetime(2026, 3, 1, tzinfo=UTC)
APRIL = datetime(2026, 4, 1, tzinfo=UTC)
#: The studio's policy: cancelling 24 hours or less before forfeits; so does a no-show.
STRICT = CancellationPolicy(late_cancel_hours=24, no_show_forfeits=True)
#: The day the sessions of the hybrid month are booked for.
HYBRID_DAYS = (3, 6, 10, 13, 17, 20, 24, 27)


def day(number: int, hour: int = 10) -> datetime:
    return MARCH.replace(day=number, hour=hour)


def hybrid_month() -> list[tuple[str, EventPayload]]:
    """Eight sessions and twelve solo workouts until April: five sessions delivered, one
    cancelled 16 hours before, one missed, one cancelled five days before; fourteen solo
    workouts."""
    happened: list[tuple[str, EventPayload]] = [
        (
            "buy",
            purchase(
                8,
                "hybrid-march",
                at=MARCH,
                package_type="hybrid",
                solo_workouts=12,
                valid_until=APRIL,
                package_name="Hybrid March",
            ),
        )
    ]
    for session_id, number in enumerate(HYBRID_DAYS, start=1):
        happened.append((f"book-{session_id}", booked(session_id, session_date=day(number))))
    for session_id in range(1, 6):
        logged = workout(session_id, date=day(HYBRID_DAYS[session_id - 1]))
        happened.append((f"log-{session_id}", logged))
    cancelled_late = day(HYBRID_DAYS[5]) - timedelta(hours=16)
    happened.append(("cancel-6", moved(events.SessionCancelled, 6, at=cancelled_late)))
    happened.append(("missed-7", moved(events.SessionNoShow, 7, at=day(HYBRID_DAYS[6], 11))))
    cancelled_early = day(HYBRID_DAYS[7]) - timedelta(days=5)
    happened.append(("cancel-8", moved(events.SessionCancelled, 8, at=cancelled_early)))
    for number in range(14):
        solo = workout(None, date=day(2 + number, 7), workout_id=uuid.UUID(int=100 + number))
        happened.append((f"solo-{number}", solo))
    return happened


def with_policy(
    happened: list[tuple[str, EventPayload]], policy: CancellationPolicy
) -> list[tuple[str, EventPayload]]:
    """The bookings stamped with `policy`, as booking stamps the studio's."""
    return [
        (
            event_id,
            payload.model_copy(update={"policy": policy})
            if isinstance(payload, events.SessionBooked)
            else payload,
        )
        for event_id, payload in happened
    ]


async def body(api: AsyncClient, path: str = "") -> Any:
    response = await api.get(f"/api/credits/{CLIENT}{path}")
    assert response.status_code == 200, response.text
    return response.json()


def figures(balance: dict[str, Any]) -> dict[str, int]:
    names = ("total", "used", "remaining", "held", "available", "expired")
    return {name: balance[name] for name in names}


async def test_a_month_of_a_hybrid_client(
    deliver: Deliver, api: AsyncClient, runtime: ServiceRuntime
) -> None:
    for event_id, payload in with_policy(hybrid_month(), STRICT):
        assert await deliver(payload, event_id=event_id) is Outcome.APPLIED
    during = await body(api)
    # Five delivered, two forfeited; nothing booked is left to hold.
    assert figures(during) == {
        "total": 8,
        "used": 7,
        "remaining": 1,
        "held": 0,
        "available": 1,
        "expired": 0,
    }
    [package] = during["packages"]
    assert (package["soloUsed"], package["soloLeft"], package["soloOver"]) == (14, 0, 2)

    store = LedgerStore(runtime.outbox, runtime.consumer)
    assert await clock.pass_time(runtime.database, store, APRIL + timedelta(hours=47)) == 1
    assert figures(await body(api))["expired"] == 0, "still within the grace"
    assert await clock.pass_time(runtime.database, store, APRIL + timedelta(days=3)) == 1
    assert await clock.pass_time(runtime.database, store, APRIL + timedelta(days=4)) == 0

    after = await body(api)
    assert figures(after) == {
        "total": 8,
        "used": 7,
        "remaining": 0,
        "held": 0,
        "available": 0,
        "expired": 1,
    }
    [package] = after["packages"]
    assert (package["status"], package["used"], package["expired"], package["left"]) == (
        "expired",
        7,
        1,
        0,
    )
    lines = await body(api, "/ledger")
    package_id = package["packageId"]
    charges = [
        (line["kind"], line["sessionId"], line["cause"])
        for line in lines
        if line["kind"] in ("deduction", "forfeit")
    ]
    assert charges == [
        *(("deduction", session, "workout-logged") for session in range(1, 6)),
        ("forfeit", 6, "late-cancel"),
        ("forfeit", 7, "no-show"),
    ]
    assert {line["packageId"] for line in lines if line["kind"] != "solo"} == {package_id}
    [expiry] = [line for line in lines if line["kind"] == "expiry"]
    assert (expiry["amount"], expiry["effectiveAt"]) == (-1, "2026-04-01T00:00:00Z")
    assert lines[-1]["remainingAfter"] == 0
    expired = [e.payload for e in await outbox_events(runtime.database)]
    assert [(e.amount, e.valid_until) for e in expired if isinstance(e, events.CreditsExpired)] == [
        (1, APRIL)
    ]
    counted = [e for e in expired if isinstance(e, events.SoloWorkoutCounted)]
    assert [(c.solo_used, c.over) for c in counted][-3:] == [(12, 0), (13, 1), (14, 2)]


async def test_a_month_of_an_unlimited_client_with_a_weekly_cap(
    deliver: Deliver, api: AsyncClient
) -> None:
    """Two sessions a week are unlimited's; a third that week, and any after its end, are
    paid by the pack of five."""
    await deliver(
        purchase(
            0, "unlimited", at=MARCH, package_type="unlimited", weekly_cap=2, valid_until=APRIL
        )
    )
    await deliver(purchase(5, "five-pack", at=MARCH))
    # Monday 2 March, Wednesday 4, Friday 6; Monday 9, Thursday 12; then 2 April.
    days = [day(2), day(4), day(6), day(9), day(12), APRIL.replace(day=2, hour=10)]
    for session_id, when in enumerate(days, start=1):
        await deliver(booked(session_id, session_date=when))
        await deliver(workout(session_id, date=when))
    balance = await body(api)
    assert figures(balance) == {
        "total": 5,
        "used": 2,
        "remaining": 3,
        "held": 0,
        "available": 3,
        "expired": 0,
    }
    by_id = {p["purchaseId"]: p for p in balance["packages"]}
    lines = await body(api, "/ledger")
    paid_by = {
        line["sessionId"]: (line["packageId"], line["amount"])
        for line in lines
        if line["kind"] == "deduction"
    }
    unlimited, pack = by_id["unlimited"]["packageId"], by_id["five-pack"]["packageId"]
    assert paid_by == {
        1: (unlimited, 0),
        2: (unlimited, 0),
        3: (pack, -1),
        4: (unlimited, 0),
        5: (unlimited, 0),
        6: (pack, -1),
    }
    assert (by_id["five-pack"]["used"], by_id["five-pack"]["left"]) == (2, 3)
    assert by_id["unlimited"]["left"] is None


async def test_each_package_keeps_its_own_counts_from_one_transaction_to_the_next(
    deliver: Deliver, api: AsyncClient
) -> None:
    """Sessions one at a time, each loading the packages afresh: the soonest-ending pack of
    one pays first, the pack of three after it, and each counts only what it paid."""
    await deliver(purchase(1, "one", at=MARCH, valid_until=APRIL))
    await deliver(purchase(3, "three", at=MARCH))
    for session_id in range(1, 5):
        await deliver(booked(session_id, session_date=day(session_id + 1)))
        await deliver(workout(session_id, date=day(session_id + 1)))
    by_id = {p["purchaseId"]: p for p in (await body(api, "/packages"))}
    assert [(by_id[k]["used"], by_id[k]["left"]) for k in ("one", "three")] == [(1, 0), (3, 0)]
    assert figures(await body(api))["used"] == 4
    await deliver(booked(5, session_date=day(9)))
    await deliver(workout(5, date=day(9)))
    by_id = {p["purchaseId"]: p for p in (await body(api, "/packages"))}
    assert [(by_id[k]["used"], by_id[k]["left"]) for k in ("one", "three")] == [(1, 0), (3, 0)]
    assert figures(await body(api))["remaining"] == -1


async def test_staff_waive_a_forfeit_once_and_nothing_else(
    deliver: Deliver, api: AsyncClient, runtime: ServiceRuntime, make_app: Callable[[], FastAPI]
) -> None:
    await deliver(purchase(2))
    await deliver(booked(1, session_date=day(10), policy=STRICT))
    await deliver(moved(events.SessionNoShow, 1, at=day(10, 11)))
    assert figures(await body(api))["used"] == 1
    waiver = {"sessionId": 1, "reason": "the client was ill"}
    first = await api.post(f"/api/credits/{CLIENT}/waivers", json=waiver)
    again = await api.post(f"/api/credits/{CLIENT}/waivers", json=waiver)
    assert (first.status_code, again.status_code) == (201, 201)
    assert figures(again.json()) == figures(first.json())
    assert (first.json()["used"], first.json()["remaining"]) == (0, 2)
    restored = [
        e.payload
        for e in await outbox_events(runtime.database)
        if isinstance(e.payload, events.SessionCreditRestored)
    ]
    assert [(r.session_id, r.restores, r.reason) for r in restored] == [
        (1, "forfeit", "the client was ill")
    ]
    unknown = await api.post(f"/api/credits/{CLIENT}/waivers", json={**waiver, "sessionId": 2})
    assert unknown.status_code == 404, unknown.text
    assert "forfeited no credit for session 2" in unknown.text


async def test_only_staff_waive_a_forfeit(
    deliver: Deliver, api: AsyncClient, as_role: Callable[..., AsyncClient]
) -> None:
    await deliver(purchase(2))
    await deliver(booked(1, session_date=day(10), policy=STRICT))
    await deliver(moved(events.SessionNoShow, 1, at=day(10, 11)))
    waiver = {"sessionId": 1, "reason": "please"}
    for role, subject in (("client", str(CLIENT)), ("trainer", str(TRAINER)), ("service", "shop")):
        response = await as_role(role, subject).post(f"/api/credits/{CLIENT}/waivers", json=waiver)
        assert response.status_code == 403, (role, response.text)
    assert (await as_role().post(f"/api/credits/{CLIENT}/waivers", json=waiver)).status_code == 401
    assert figures(await body(api))["used"] == 1


async def test_a_rebuild_after_expiries_and_a_policy_change_gives_the_identical_ledger(
    deliver: Deliver, api: AsyncClient, runtime: ServiceRuntime, make_app: Callable[[], FastAPI]
) -> None:
    """The studio drops its policy mid-month (later bookings carry none); the package
    expires. The rebuilt copy reads its ledger topic, then the inputs in another order, and
    runs its clock at another time: the same entries, packages and balance."""
    month = hybrid_month()
    strict_until = next(i for i, (event_id, _) in enumerate(month) if event_id == "book-6")
    happened = with_policy(month[:strict_until], STRICT) + month[strict_until:]
    for event_id, payload in happened:
        await deliver(payload, event_id=event_id)
    store = LedgerStore(runtime.outbox, runtime.consumer)
    await clock.pass_time(runtime.database, store, APRIL + timedelta(days=3))
    ledger_topic = await outbox_records(runtime.database)

    rebuilt_app = make_app()
    rebuilt = rebuilt_app.state.runtime
    for record in ledger_topic:
        assert await rebuilt.consumer.process(record) is Outcome.APPLIED
    for event_id, payload in reversed(happened):
        await rebuilt.consumer.process(consumed(payload, event_id=event_id))
    rebuilt_store = LedgerStore(rebuilt.outbox, rebuilt.consumer)
    await clock.pass_time(rebuilt.database, rebuilt_store, APRIL + timedelta(days=300))
    assert await outbox_records(rebuilt.database) == [], "announced again"

    async with AsyncClient(
        transport=ASGITransport(app=rebuilt_app), base_url="http://rebuilt", headers=api.headers
    ) as rebuilt_api:
        rebuilt_balance = await body(rebuilt_api)
        rebuilt_ledger = await body(rebuilt_api, "/ledger")
    original_balance, original_ledger = await body(api), await body(api, "/ledger")
    for line in (*rebuilt_ledger, *original_ledger):
        del line["recordedAt"]
    assert rebuilt_ledger == original_ledger
    assert rebuilt_balance == original_balance
    # Under the policy of its booking: session 6 and 7 were booked after it was dropped.
    assert [line["kind"] for line in original_ledger].count("forfeit") == 0
    assert figures(original_balance)["expired"] == 3
