"""A batch of events is applied set-wise by the ledger's store (`credits.store`): what its
events name is locked and loaded once, the rules decide in order, and what they decided is
written once. These pin that a batch ends exactly as its events applied one by one would,
on a real database."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

import pytest
from httpx import AsyncClient
from sqlalchemy import func, select

from contracts.events import (
    CreditDeductionRejected,
    EventPayload,
    SessionCancelled,
    SessionCompleted,
    SessionCreditDeducted,
)
from credits.models import PendingDeduction
from servicekit.consumer import Outcome
from servicekit.runtime import ServiceRuntime
from testkit.events import CLIENT, TRAINER, booked, moved, purchase, workout
from testkit.helpers import Deliver, RecordingDeadLetters, consumed

from .test_ledger import OTHER, announced

pytestmark = pytest.mark.infra

#: One batch of events (an event id of its own, or the one given for a duplicate), each on
#: the partition `partitions` names (0 when not given).
DeliverBatch = Callable[..., Coroutine[Any, Any, list[Outcome]]]


@pytest.fixture
def deliver_batch(runtime: ServiceRuntime, dead_letters: RecordingDeadLetters) -> DeliverBatch:
    async def deliver(
        *events: EventPayload | tuple[EventPayload, str], partitions: Sequence[int] = ()
    ) -> list[Outcome]:
        records = []
        for offset, item in enumerate(events):
            payload, event_id = item if isinstance(item, tuple) else (item, None)
            record = consumed(
                payload,
                event_id=event_id,
                topic_prefix=runtime.settings.kafka_topic_prefix,
                offset=offset,
            )
            if partitions:
                record = dataclasses.replace(record, partition=partitions[offset])
            records.append(record)
        return (await runtime.consumer.process_batch(records)).outcomes

    return deliver


def story(user_id: int, first_session: int, order: str) -> list[EventPayload]:
    """One client's month: a package, five sessions delivered, cancelled, missed, parked."""
    s = first_session
    package = purchase(purchase_id=f"order-{user_id}").model_copy(update={"user_id": user_id})
    return [
        package,
        booked(s, user_id),
        workout(s, user_id=user_id),
        booked(s + 1, user_id),
        moved(SessionCompleted, s + 1, user_id),
        workout(s + 2, user_id=user_id),  # before its booking: parked, then settled
        booked(s + 2, user_id),
        booked(s + 3, user_id),
        workout(s + 3, user_id=user_id),
        moved(SessionCancelled, s + 3, user_id),  # after its deduction: given back
        workout(s + 4, user_id=user_id, status="in_progress"),  # waits for good
        workout(None, user_id=user_id),
    ][:: 1 if order == "forward" else -1]


async def ledger_lines(api: AsyncClient, user_id: int, first_session: int) -> list[tuple[Any, ...]]:
    response = await api.get(f"/api/credits/{user_id}/ledger")
    assert response.status_code == 200, response.text
    return [
        (
            line["kind"],
            line["amount"],
            line["sessionId"] and line["sessionId"] - first_session,
            line["cause"],
            line["remainingAfter"],
        )
        for line in response.json()
    ]


@pytest.mark.parametrize("order", ["forward", "backward"])
async def test_a_batch_ends_as_its_events_applied_one_by_one(
    deliver: Deliver, deliver_batch: DeliverBatch, api: AsyncClient, order: str
) -> None:
    for event in story(OTHER, 100, order):
        await deliver(event)
    outcomes = await deliver_batch(*story(CLIENT, 1, order))
    assert set(outcomes) == {Outcome.APPLIED}
    one_by_one = await ledger_lines(api, OTHER, 100)
    assert await ledger_lines(api, CLIENT, 1) == one_by_one
    assert "deduction" in [kind for kind, *_ in one_by_one]
    assert (await api.get(f"/api/credits/{CLIENT}")).json()["remaining"] == 7


async def test_a_batch_moves_what_earlier_batches_stored(
    deliver_batch: DeliverBatch, api: AsyncClient, runtime: ServiceRuntime
) -> None:
    await deliver_batch(purchase(), workout(7), booked(1))
    await deliver_batch(booked(7), moved(SessionCompleted, 1))
    await deliver_batch(moved(SessionCancelled, 1))
    balance = (await api.get(f"/api/credits/{CLIENT}")).json()
    assert (balance["used"], balance["remaining"]) == (1, 9)
    async with runtime.database.transaction() as db:
        assert await db.scalar(select(func.count()).select_from(PendingDeduction)) == 0


async def test_duplicates_within_a_batch_are_applied_once(
    deliver_batch: DeliverBatch, api: AsyncClient, runtime: ServiceRuntime
) -> None:
    logged = workout(1)
    outcomes = await deliver_batch(
        (purchase(), "p"), (purchase(), "p"), booked(1), (logged, "w"), (logged, "w"), workout(1)
    )
    assert outcomes == [
        Outcome.APPLIED,
        Outcome.DUPLICATE,
        Outcome.APPLIED,
        Outcome.APPLIED,
        Outcome.DUPLICATE,
        Outcome.APPLIED,
    ]
    assert (await api.get(f"/api/credits/{CLIENT}")).json()["remaining"] == 9
    assert len(await announced(runtime, SessionCreditDeducted)) == 1


async def test_a_refused_record_inside_a_batch_is_dead_lettered_and_the_rest_applied(
    deliver_batch: DeliverBatch,
    api: AsyncClient,
    runtime: ServiceRuntime,
    dead_letters: RecordingDeadLetters,
) -> None:
    outcomes = await deliver_batch(
        purchase(), booked(1), booked(1, user_id=OTHER), workout(1), booked(2), workout(2)
    )
    assert outcomes == [
        Outcome.APPLIED,
        Outcome.APPLIED,
        Outcome.DEAD_LETTERED,
        Outcome.APPLIED,
        Outcome.APPLIED,
        Outcome.APPLIED,
    ]
    assert dead_letters.reasons == [
        f"session 1 is booked for client {CLIENT} with trainer {TRAINER}, "
        f"not client {OTHER} with trainer {TRAINER}"
    ]
    assert [kind for *_, kind in dead_letters.sent] == ["rejected"]
    assert (await api.get(f"/api/credits/{CLIENT}")).json()["remaining"] == 8
    # Applied once, after the refused record was taken out: nothing announced twice.
    assert len(await announced(runtime, SessionCreditDeducted)) == 2


async def test_a_rejected_deduction_inside_a_batch_is_announced_once(
    deliver_batch: DeliverBatch, runtime: ServiceRuntime
) -> None:
    logged = workout(1, user_id=OTHER)
    await deliver_batch(booked(1), (logged, "w"), booked(2, user_id=OTHER), (logged, "w"))
    [rejected] = await announced(runtime, CreditDeductionRejected)
    assert rejected.workout_id == logged.workout_id


async def test_a_batch_across_partitions_settles_a_deduction_parked_on_another(
    deliver_batch: DeliverBatch, api: AsyncClient, runtime: ServiceRuntime
) -> None:
    """A workout and its session's booking come on different partitions of different
    topics, in one batch: the deduction is parked by the first and settled by the second."""
    logged = workout(7)
    outcomes = await deliver_batch(
        logged, purchase(), booked(7), workout(8), partitions=[1, 2, 0, 3]
    )
    assert set(outcomes) == {Outcome.APPLIED}
    assert (await api.get(f"/api/credits/{CLIENT}")).json()["remaining"] == 9
    pending = (await api.get("/api/credits/pending")).json()
    assert [p["sessionId"] for p in pending] == [8]
    [deducted] = await announced(runtime, SessionCreditDeducted)
    assert (deducted.session_id, deducted.workout_id) == (7, logged.workout_id)
