"""The credit ledger's rules, on a real database: one credit per delivered trainer-led
db, exactly once, in any order."""

from __future__ import annotations

import itertools
import random
import uuid
from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy.exc
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from sqlalchemy import func, select, text

from contracts import events
from contracts.events import Balance as ContractBalance
from credits.models import Balance, LedgerEntry
from servicekit.consumer import Outcome
from servicekit.db import Database
from servicekit.runtime import ServiceRuntime
from testkit.events import CLIENT, TRAINER, booked, moved, purchase, workout
from testkit.helpers import (
    Deliver,
    RecordingDeadLetters,
    consumed,
    outbox_events,
    outbox_records,
)

pytestmark = pytest.mark.infra

OTHER = 789


async def balance(api: AsyncClient, user_id: int = CLIENT) -> tuple[int, int, int]:
    body = (await api.get(f"/api/credits/{user_id}")).json()
    return body["total"], body["used"], body["remaining"]


async def announced(runtime: ServiceRuntime, kind: type[events.EventPayload]) -> list[Any]:
    return [e.payload for e in await outbox_events(runtime.database) if isinstance(e.payload, kind)]


async def test_a_purchase_grants_its_sessions_once(
    deliver: Deliver, api: AsyncClient, runtime: ServiceRuntime
) -> None:
    assert await deliver(purchase(), event_id="p1") is Outcome.APPLIED
    assert await deliver(purchase(), event_id="p1") is Outcome.DUPLICATE
    # The store sends the same purchase again under a new event id: still granted once.
    assert await deliver(purchase(), event_id="p1-resent") is Outcome.APPLIED
    assert await balance(api) == (10, 0, 10)
    grants = await announced(runtime, events.CreditsGranted)
    assert [(g.amount, g.purchase_id, g.balance.remaining) for g in grants] == [(10, "order-1", 10)]


async def test_a_trainer_led_workout_uses_one_credit(
    deliver: Deliver, api: AsyncClient, runtime: ServiceRuntime
) -> None:
    await deliver(purchase())
    await deliver(booked(1))
    logged = workout(1)
    await deliver(logged)
    assert await balance(api) == (10, 1, 9)
    [deducted] = await announced(runtime, events.SessionCreditDeducted)
    assert (deducted.session_id, deducted.workout_id, deducted.cause) == (
        1,
        logged.workout_id,
        "workout-logged",
    )
    assert deducted.balance.remaining == 9


async def test_solo_workouts_use_no_credit(deliver: Deliver, api: AsyncClient) -> None:
    await deliver(purchase())
    for _ in range(3):
        await deliver(workout(None))
    assert await balance(api) == (10, 0, 10)


@pytest.mark.parametrize("status", ["planned", "skipped", "cancelled"])
async def test_a_workout_not_delivered_uses_no_credit(
    deliver: Deliver, api: AsyncClient, status: str
) -> None:
    await deliver(purchase())
    await deliver(booked(1))
    await deliver(workout(1, status=status))
    assert await balance(api) == (10, 0, 10)


async def test_trainer_and_client_logging_the_session_and_its_completion_deduct_once(
    deliver: Deliver, api: AsyncClient, runtime: ServiceRuntime
) -> None:
    await deliver(purchase())
    await deliver(booked(1))
    await deliver(moved(events.SessionStarted, 1))
    await deliver(workout(1, status="in_progress"))  # the trainer, during the session
    await deliver(workout(1))  # the client, afterwards
    await deliver(moved(events.SessionCompleted, 1))
    await deliver(workout(1))  # someone logs it once more
    assert await balance(api) == (10, 1, 9)
    assert len(await announced(runtime, events.SessionCreditDeducted)) == 1


async def test_a_completed_session_uses_a_credit_without_any_workout(
    deliver: Deliver, api: AsyncClient, runtime: ServiceRuntime
) -> None:
    await deliver(purchase())
    await deliver(booked(1))
    await deliver(moved(events.SessionCompleted, 1))
    assert await balance(api) == (10, 1, 9)
    [deducted] = await announced(runtime, events.SessionCreditDeducted)
    assert deducted.cause == "session-completed"


async def test_a_workout_status_change_to_in_progress_deducts(
    deliver: Deliver, api: AsyncClient
) -> None:
    await deliver(purchase())
    await deliver(booked(1))
    planned = workout(1, status="planned")
    await deliver(planned)
    assert await balance(api) == (10, 0, 10)
    await deliver(
        events.WorkoutStatusChanged(
            workout_id=planned.workout_id,
            user_id=CLIENT,
            session_type="trainer-led",
            session_id=1,
            trainer_id=TRAINER,
            status="in_progress",
            previous_status="planned",
        )
    )
    assert await balance(api) == (10, 1, 9)


async def test_a_workout_before_its_booking_waits_for_it(
    deliver: Deliver, api: AsyncClient
) -> None:
    await deliver(purchase())
    await deliver(workout(7))
    assert await balance(api) == (10, 0, 10)
    await deliver(booked(7))
    assert await balance(api) == (10, 1, 9)


async def test_a_deduction_before_the_purchase_goes_below_zero_then_up(
    deliver: Deliver, api: AsyncClient
) -> None:
    await deliver(booked(1))
    await deliver(workout(1))
    assert await balance(api) == (0, 1, -1)
    await deliver(purchase())
    assert await balance(api) == (10, 1, 9)


async def test_no_credits_left_still_records_the_session(
    deliver: Deliver, api: AsyncClient
) -> None:
    await deliver(purchase(sessions=1))
    for session_id in (1, 2):
        await deliver(booked(session_id))
        await deliver(workout(session_id))
    assert await balance(api) == (1, 2, -1)


async def test_a_workout_for_another_clients_session_is_rejected_with_the_reason(
    deliver: Deliver, api: AsyncClient, runtime: ServiceRuntime
) -> None:
    await deliver(purchase())
    await deliver(booked(1, user_id=OTHER))
    await deliver(workout(1))
    assert await balance(api) == (10, 0, 10)
    [rejected] = await announced(runtime, events.CreditDeductionRejected)
    assert rejected.reason == (
        f"session 1 is booked for client {OTHER} with trainer {TRAINER}, "
        f"not client {CLIENT} with trainer {TRAINER}"
    )


async def test_a_workout_with_another_trainer_is_rejected(
    deliver: Deliver, api: AsyncClient, runtime: ServiceRuntime
) -> None:
    await deliver(booked(1))
    await deliver(workout(1, trainer_id=OTHER))
    assert await balance(api) == (0, 0, 0)
    assert len(await announced(runtime, events.CreditDeductionRejected)) == 1


async def test_a_parked_workout_that_turns_out_mismatched_is_rejected(
    deliver: Deliver, api: AsyncClient, runtime: ServiceRuntime
) -> None:
    await deliver(workout(1))
    await deliver(booked(1, user_id=OTHER))
    assert await balance(api) == (0, 0, 0)
    assert len(await announced(runtime, events.CreditDeductionRejected)) == 1


@pytest.mark.parametrize("ended", [events.SessionCancelled, events.SessionNoShow])
async def test_a_cancelled_or_no_show_session_uses_no_credit(
    deliver: Deliver, api: AsyncClient, runtime: ServiceRuntime, ended: type[Any]
) -> None:
    await deliver(purchase())
    await deliver(booked(1))
    await deliver(moved(ended, 1))
    await deliver(workout(1))
    assert await balance(api) == (10, 0, 10)
    [rejected] = await announced(runtime, events.CreditDeductionRejected)
    assert rejected.reason.startswith("session 1 is ")


async def test_a_session_cancelled_after_its_deduction_gets_the_credit_back_once(
    deliver: Deliver, api: AsyncClient, runtime: ServiceRuntime
) -> None:
    await deliver(purchase())
    await deliver(booked(1))
    await deliver(workout(1, status="in_progress"))
    assert await balance(api) == (10, 1, 9)
    await deliver(moved(events.SessionCancelled, 1), event_id="cancel-1")
    await deliver(moved(events.SessionCancelled, 1), event_id="cancel-1-again")
    assert await balance(api) == (10, 0, 10)
    [restored] = await announced(runtime, events.SessionCreditRestored)
    assert (restored.session_id, restored.balance.remaining) == (1, 10)
    kinds = [line["kind"] for line in (await api.get(f"/api/credits/{CLIENT}/ledger")).json()]
    assert kinds == ["grant", "deduction", "restoration"]


async def test_a_booking_reusing_an_id_for_another_client_is_dead_lettered(
    deliver: Deliver, dead_letters: RecordingDeadLetters
) -> None:
    await deliver(booked(1))
    assert await deliver(booked(1, user_id=OTHER)) is Outcome.DEAD_LETTERED
    assert dead_letters.reasons == [
        f"session 1 is booked for client {CLIENT} with trainer {TRAINER}, "
        f"not client {OTHER} with trainer {TRAINER}"
    ]


async def test_the_ledger_explains_every_unit_of_the_balance(
    deliver: Deliver, api: AsyncClient
) -> None:
    await deliver(purchase(sessions=5, purchase_id="order-9"), event_id="buy")
    await deliver(booked(3))
    logged = workout(3)
    await deliver(logged, event_id="log")
    lines = (await api.get(f"/api/credits/{CLIENT}/ledger")).json()
    assert [(line["kind"], line["amount"], line["remainingAfter"]) for line in lines] == [
        ("grant", 5, 5),
        ("deduction", -1, 4),
    ]
    assert lines[0]["purchaseId"] == "order-9"
    assert lines[0]["causedBy"] == "buy"
    assert (lines[1]["sessionId"], lines[1]["workoutId"], lines[1]["causedBy"]) == (
        3,
        str(logged.workout_id),
        "log",
    )
    assert sum(line["amount"] for line in lines) == (await balance(api))[2]


async def test_staff_grants_are_idempotent_by_key(api: AsyncClient) -> None:
    body = {"sessions": 3, "reason": "goodwill"}
    headers = {"Idempotency-Key": "ticket-42"}
    first = await api.post(f"/api/credits/{CLIENT}/grants", json=body, headers=headers)
    again = await api.post(f"/api/credits/{CLIENT}/grants", json=body, headers=headers)
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json() == first.json()
    figures = ("userId", "total", "used", "remaining", "held", "available", "expired")
    assert [again.json()[name] for name in figures] == [CLIENT, 3, 0, 3, 0, 3, 0]
    [package] = again.json()["packages"]
    assert (package["packageType"], package["sessions"], package["left"]) == ("sessions", 3, 3)
    assert package["validUntil"] is None
    await api.post(f"/api/credits/{CLIENT}/grants", json=body)
    assert await balance(api) == (6, 0, 6)


@pytest.mark.parametrize(
    ("path", "body"),
    [
        (f"/api/credits/{CLIENT}/grants", {"sessions": 0, "reason": "x"}),
        (f"/api/credits/{CLIENT}/grants", {"sessions": 2}),
        (f"/api/credits/{CLIENT}/grants", {"sessions": "many", "reason": "x"}),
        ("/api/credits/0/grants", {"sessions": 1, "reason": "x"}),
    ],
)
async def test_bad_grants_get_a_422_saying_what_is_wrong(
    api: AsyncClient, path: str, body: dict[str, Any]
) -> None:
    response = await api.post(path, json=body)
    assert response.status_code == 422
    assert response.json()["detail"]


async def test_a_client_with_nothing_has_a_zero_balance(api: AsyncClient) -> None:
    assert await balance(api, 999) == (0, 0, 0)
    assert (await api.get("/api/credits/999/ledger")).json() == []
    assert (await api.get("/api/credits/abc")).status_code == 422


@pytest.mark.parametrize(
    "change", ["update ledger_entries set amount = 50", "delete from ledger_entries"]
)
async def test_ledger_entries_can_never_be_changed(
    runtime: ServiceRuntime, owner_database: Database, change: str
) -> None:
    """Twice over: the service's runtime role has no right to, and even the owner's change
    is stopped by the trigger."""
    async with runtime.database.transaction() as db:
        await db.execute(
            text(
                "insert into ledger_entries (id, user_id, kind, amount, caused_by)"
                " values (gen_random_uuid(), 1, 'grant', 5, 'test')"
            )
        )
    with pytest.raises(Exception, match="permission denied for table ledger_entries"):
        async with runtime.database.transaction() as db:
            await db.execute(text(change))
    with pytest.raises(Exception, match="never updated or deleted"):
        async with owner_database.transaction() as db:
            await db.execute(text(change))


async def test_the_runtime_role_may_not_change_the_schema(runtime: ServiceRuntime) -> None:
    for ddl in ("create table mine (id int)", "drop table balances", "truncate balances"):
        with pytest.raises(sqlalchemy.exc.ProgrammingError, match="InsufficientPrivilege"):
            async with runtime.database.transaction() as db:
                await db.execute(text(ddl))


async def test_any_arrival_order_gives_the_same_balance(
    deliver: Deliver, runtime: ServiceRuntime, api: AsyncClient, owner_database: Database
) -> None:
    """Every interleaving of one session's story across the three input topics."""
    story: list[tuple[str, events.EventPayload]] = [
        ("buy", purchase()),
        ("book", booked(1)),
        ("log", workout(1, workout_id=uuid.UUID(int=1))),
        ("done", moved(events.SessionCompleted, 1)),
    ]
    orders = list(itertools.permutations(story))
    random.Random(7).shuffle(orders)
    for n, order in enumerate(orders[:8]):
        async with owner_database.transaction() as db:
            # A fresh start for each order (truncate is not a row delete: no trigger fires).
            await db.execute(
                text(
                    "truncate ledger_entries, balances, sessions, pending_deductions, outbox,"
                    " processed_events"
                )
            )
        for event_id, payload in order:
            await deliver(payload, event_id=f"{n}-{event_id}")
        assert await balance(api) == (10, 1, 9), [event_id for event_id, _ in order]
        async with runtime.database.transaction() as db:
            used = await db.scalar(
                select(func.count()).select_from(LedgerEntry).where(LedgerEntry.kind == "deduction")
            )
            row = await db.get(Balance, CLIENT)
        assert used == 1
        assert row is not None
        assert row.remaining == 9


async def test_a_grant_of_not_a_number_is_a_422_not_a_500(api: AsyncClient) -> None:
    response = await api.post(
        f"/api/credits/{CLIENT}/grants",
        content=b'{"sessions": NaN, "reason": "x"}',
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 422
    assert response.json()["detail"][0]["input"] == "NaN"


async def test_a_staff_grant_comes_back_from_the_ledger_topic_in_a_rebuild(
    api: AsyncClient, runtime: ServiceRuntime, make_app: Callable[[], FastAPI]
) -> None:
    body = {"sessions": 3, "reason": "goodwill"}
    await api.post(f"/api/credits/{CLIENT}/grants", json=body, headers={"Idempotency-Key": "t-1"})
    [announced_grant] = await outbox_records(runtime.database)
    # Live, the announcement coming back is known: recorded as applied when it was made.
    assert await runtime.consumer.process(announced_grant) is Outcome.DUPLICATE
    assert await balance(api) == (3, 0, 3)

    rebuilt_app = make_app()
    assert await rebuilt_app.state.runtime.consumer.process(announced_grant) is Outcome.APPLIED
    async with AsyncClient(
        transport=ASGITransport(app=rebuilt_app), base_url="http://rebuilt", headers=api.headers
    ) as rebuilt_api:
        assert await balance(rebuilt_api) == (3, 0, 3)
        rebuilt_ledger = (await rebuilt_api.get(f"/api/credits/{CLIENT}/ledger")).json()
    original_ledger = (await api.get(f"/api/credits/{CLIENT}/ledger")).json()
    for line in (*rebuilt_ledger, *original_ledger):
        del line["recordedAt"]
    assert rebuilt_ledger == original_ledger


async def test_a_rebuild_records_each_fact_as_announced_whatever_the_input_order(
    deliver: Deliver, api: AsyncClient, runtime: ServiceRuntime, make_app: Callable[[], FastAPI]
) -> None:
    """Live, the workout deducts before the completion arrives; the rebuilt copy reads the
    inputs the other way round. Having read its ledger topic first (as the service does at
    start), it records the deduction as announced and announces nothing again."""
    inputs = [
        ("buy", purchase()),
        ("book", booked(1)),
        ("log", workout(1, workout_id=uuid.UUID(int=1))),
        ("done", moved(events.SessionCompleted, 1)),
        ("book-other", booked(2, user_id=OTHER)),
        ("log-other", workout(2)),  # another client's session: rejected
        ("book-3", booked(3)),
        ("done-3", moved(events.SessionCompleted, 3)),
        ("cancel-3", moved(events.SessionCancelled, 3)),  # deducted, then given back
    ]
    for event_id, payload in inputs:
        await deliver(payload, event_id=event_id)
    ledger_topic = await outbox_records(runtime.database)
    live = await announced(runtime, events.SessionCreditDeducted)
    assert [(d.session_id, d.cause, d.caused_by) for d in live] == [
        (1, "workout-logged", "log"),
        (3, "session-completed", "done-3"),
    ]

    rebuilt_app = make_app()
    rebuilt = rebuilt_app.state.runtime
    for record in ledger_topic:
        assert await rebuilt.consumer.process(record) is Outcome.APPLIED
    for event_id, payload in [inputs[3], *inputs[:3], *inputs[4:]]:
        await rebuilt.consumer.process(consumed(payload, event_id=event_id))

    assert await outbox_records(rebuilt.database) == [], "announced again"
    async with AsyncClient(
        transport=ASGITransport(app=rebuilt_app), base_url="http://rebuilt", headers=api.headers
    ) as rebuilt_api:
        assert await balance(rebuilt_api) == await balance(api) == (10, 1, 9)
        rebuilt_ledger = (await rebuilt_api.get(f"/api/credits/{CLIENT}/ledger")).json()
    original_ledger = (await api.get(f"/api/credits/{CLIENT}/ledger")).json()
    for line in (*rebuilt_ledger, *original_ledger):
        del line["recordedAt"]
    assert rebuilt_ledger == original_ledger
    assert [line["cause"] for line in rebuilt_ledger if line["kind"] == "deduction"] == [
        "workout-logged",
        "session-completed",
    ]


async def test_without_its_history_a_rebuild_would_attribute_by_arrival(
    make_app: Callable[[], FastAPI],
) -> None:
    """The other side of the test above: the inputs alone do not say which cause was first."""
    rebuilt = make_app().state.runtime
    for event_id, payload in [
        ("buy", purchase()),
        ("book", booked(1)),
        ("done", moved(events.SessionCompleted, 1)),
        ("log", workout(1, workout_id=uuid.UUID(int=1))),
    ]:
        await rebuilt.consumer.process(consumed(payload, event_id=event_id))
    [deducted] = await announced(rebuilt, events.SessionCreditDeducted)
    assert (deducted.cause, deducted.caused_by) == ("session-completed", "done")


@pytest.mark.parametrize("source", ["/platform/forger", "/swanstudios/credits-replica"])
async def test_a_ledger_event_credits_did_not_write_is_dead_lettered_and_grants_nothing(
    deliver: Deliver,
    api: AsyncClient,
    dead_letters: RecordingDeadLetters,
    runtime: ServiceRuntime,
    source: str,
) -> None:
    """Credits records what appears on its own ledger topic (that is how a rebuild gets the
    ledger back): only what it wrote itself."""
    ledger = runtime.settings.kafka_topic_prefix + "credits.ledger"
    forged = events.CreditsGranted(
        user_id=CLIENT,
        amount=1000,
        reason="free credits",
        balance=ContractBalance(total=1000, used=0, remaining=1000),
    )

    assert await deliver(forged, source=source) is Outcome.DEAD_LETTERED

    assert dead_letters.reasons == [
        f"CreditsGranted from {source}: only /swanstudios/credits writes {ledger}"
    ]
    assert await balance(api) == (0, 0, 0)
