"""Session usage on a real database: completed workouts split by type, the credit balance,
and SessionUsageUpdated announced exactly when usage changes, in any arrival order."""

from __future__ import annotations

import itertools
from dataclasses import replace
from typing import Any

import pytest
from httpx import AsyncClient
from sqlalchemy import select, text

from contracts.envelope import parse_event, record_headers
from contracts.events import SessionUsageUpdated, WorkoutLogged
from servicekit.consumer import Outcome
from servicekit.db import Database
from servicekit.runtime import ServiceRuntime
from servicekit.tables import outbox
from servicekit.tracing import TraceParent
from testkit.events import CLIENT, status_changed
from testkit.helpers import (
    Deliver,
    RecordingDeadLetters,
    consumed,
    outbox_events,
    outbox_records,
)

from .stories import (
    CREDIT_POLICIES_CREDIT_CHART,
    CREDIT_POLICIES_USAGE,
    EXAMPLE_1_USAGE,
    OTHER_CLIENT,
    Step,
    balance,
    credit_policies,
    day,
    deducted,
    deduction_rejected,
    example_1,
    expired,
    expiring_soon,
    forfeited,
    granted,
    logged,
    restored,
    solo_counted,
)

pytestmark = pytest.mark.infra

ZERO_USAGE = {
    "total": 0,
    "solo": {"count": 0, "percentage": 0.0},
    "trainerLed": {"count": 0, "percentage": 0.0},
    "trainerAssisted": {"count": 0, "percentage": 0.0},
    "group": {"count": 0, "percentage": 0.0},
    "credits": {"total": 0, "used": 0, "remaining": 0, "held": 0, "expired": 0, "available": 0},
}


async def usage(api: AsyncClient, user_id: int = CLIENT) -> dict[str, Any]:
    response = await api.get(f"/api/analytics/{user_id}/session-usage")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def announcements(runtime: ServiceRuntime) -> list[SessionUsageUpdated]:
    return [
        event.payload
        for event in await outbox_events(runtime.database)
        if isinstance(event.payload, SessionUsageUpdated)
    ]


def counts_of(announced: SessionUsageUpdated) -> tuple[int, int, int]:
    return announced.total, announced.solo.count, announced.trainer_led.count


async def play(deliver: Deliver, steps: list[Step]) -> None:
    for event_id, time, payload in steps:
        assert await deliver(payload, event_id=event_id, time=time) is not Outcome.DEAD_LETTERED


async def test_example_2_thirty_solo_and_fifteen_trainer_led_of_a_twenty_session_package(
    deliver: Deliver, api: AsyncClient
) -> None:
    await deliver(granted(20))
    for _ in range(30):
        await deliver(logged("solo"))
    for session_id in range(1, 16):
        await deliver(logged("trainer-led", session_id=session_id))
        await deliver(deducted(session_id, 20, session_id))
    assert await usage(api) == {
        "total": 45,
        "solo": {"count": 30, "percentage": 66.7},
        "trainerLed": {"count": 15, "percentage": 33.3},
        "trainerAssisted": {"count": 0, "percentage": 0.0},
        "group": {"count": 0, "percentage": 0.0},
        "credits": {
            "total": 20,
            "used": 15,
            "remaining": 5,
            "held": 0,
            "expired": 0,
            "available": 5,
        },
    }


async def test_example_1_a_ten_session_package_over_two_weeks(
    deliver: Deliver, api: AsyncClient, runtime: ServiceRuntime
) -> None:
    workouts, ledger = example_1()
    in_time_order = sorted(workouts + ledger, key=lambda step: step[1])
    await play(deliver, in_time_order)
    assert await usage(api) == EXAMPLE_1_USAGE
    latest = (await announcements(runtime))[-1]
    assert latest.to_json_dict() == {
        "userId": CLIENT,
        **EXAMPLE_1_USAGE,
        "asOf": "2026-01-17T09:00:00Z",  # Saturday of week 2, the last change
    }


async def test_the_dashboard_charts_are_served_as_text(deliver: Deliver, api: AsyncClient) -> None:
    workouts, ledger = example_1()
    await play(deliver, sorted(workouts + ledger, key=lambda step: step[1]))
    response = await api.get(f"/api/analytics/{CLIENT}/session-usage/chart")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert "Solo Workouts:" in response.text
    assert "4 (66.7%)" in response.text
    assert "2 (33.3%)" in response.text
    # No holds, nothing expired: the credit chart is the spec's, without those lines.
    assert ("Held:" in response.text, "Expired:" in response.text) == (False, False)
    assert (await api.get("/api/analytics/0/session-usage/chart")).status_code == 422


async def test_a_client_with_nothing_gets_zeros_not_an_error(api: AsyncClient) -> None:
    assert await usage(api, 999) == ZERO_USAGE


@pytest.mark.parametrize("status", ["planned", "in_progress", "skipped", "cancelled"])
async def test_workouts_that_are_not_completed_are_not_counted(
    deliver: Deliver, api: AsyncClient, runtime: ServiceRuntime, status: str
) -> None:
    await deliver(logged("solo", status))
    await deliver(logged("trainer-led", status))
    assert await usage(api) == ZERO_USAGE
    assert await announcements(runtime) == []


async def test_a_planned_workout_counts_once_it_is_completed(
    deliver: Deliver, api: AsyncClient
) -> None:
    planned = logged("trainer-led", "planned")
    await deliver(planned)
    await deliver(status_changed(planned, "in_progress"))
    assert (await usage(api))["total"] == 0
    await deliver(status_changed(planned, "completed", previous="in_progress"))
    body = await usage(api)
    assert (body["total"], body["trainerLed"]) == (1, {"count": 1, "percentage": 100.0})


@pytest.mark.parametrize("undone", ["skipped", "cancelled"])
async def test_a_completed_workout_leaves_the_counts_when_undone_and_returns_when_redone(
    deliver: Deliver, api: AsyncClient, undone: str
) -> None:
    solo = logged("solo")
    await deliver(solo)
    await deliver(logged("trainer-led"))
    assert (await usage(api))["solo"] == {"count": 1, "percentage": 50.0}

    await deliver(status_changed(solo, undone))
    body = await usage(api)
    assert (body["total"], body["solo"], body["trainerLed"]) == (
        1,
        {"count": 0, "percentage": 0.0},
        {"count": 1, "percentage": 100.0},
    )

    await deliver(status_changed(solo, "completed", previous=undone))
    assert (await usage(api))["solo"] == {"count": 1, "percentage": 50.0}


async def test_a_status_change_of_a_workout_never_seen_counts_it_from_its_own_fields(
    deliver: Deliver, api: AsyncClient
) -> None:
    """A history that starts midway: the WorkoutLogged is not there, the change carries
    enough to count the workout."""
    never_seen = logged("trainer-led", "planned")
    await deliver(status_changed(never_seen, "completed"))
    assert (await usage(api))["trainerLed"] == {"count": 1, "percentage": 100.0}


async def test_a_workout_logged_again_is_updated_not_counted_twice(
    deliver: Deliver, api: AsyncClient
) -> None:
    first = logged("solo", "in_progress")
    await deliver(first)
    await deliver(logged("solo", "completed", workout_id=first.workout_id))
    await deliver(logged("solo", "completed", workout_id=first.workout_id))
    assert (await usage(api))["solo"] == {"count": 1, "percentage": 100.0}


async def test_the_credit_balance_is_the_latest_the_ledger_announced(
    deliver: Deliver, api: AsyncClient
) -> None:
    await deliver(granted(10))
    await deliver(deducted(1, 10, 1))
    await deliver(deducted(2, 10, 2))
    assert (await usage(api))["credits"] == {
        "total": 10,
        "used": 2,
        "remaining": 8,
        "held": 0,
        "expired": 0,
        "available": 8,
    }
    await deliver(restored(2, 10, 1))
    assert (await usage(api))["credits"] == {
        "total": 10,
        "used": 1,
        "remaining": 9,
        "held": 0,
        "expired": 0,
        "available": 9,
    }
    await deliver(granted(15, 1, amount=5))
    assert (await usage(api))["credits"] == {
        "total": 15,
        "used": 1,
        "remaining": 14,
        "held": 0,
        "expired": 0,
        "available": 14,
    }


async def test_a_forfeit_and_an_expiry_set_held_expired_and_available(
    deliver: Deliver, api: AsyncClient, runtime: ServiceRuntime
) -> None:
    await deliver(deducted(1, 10, 1, held=1), time=day(2))
    assert await deliver(forfeited(2, balance(10, 2)), time=day(4)) is Outcome.APPLIED
    assert (await usage(api))["credits"] == {
        "total": 10,
        "used": 2,
        "remaining": 8,
        "held": 0,
        "expired": 0,
        "available": 8,
    }
    leaves = balance(10, 2, held=1, expired=3)
    assert await deliver(expired(3, leaves), time=day(8)) is Outcome.APPLIED
    expected = {"total": 10, "used": 2, "remaining": 5, "held": 1, "expired": 3, "available": 4}
    assert (await usage(api))["credits"] == expected
    latest = (await announcements(runtime))[-1]
    assert (latest.to_json_dict()["credits"], latest.as_of) == (expected, day(8))


async def test_ledger_events_without_a_balance_are_ignored_not_dead_lettered(
    deliver: Deliver,
    api: AsyncClient,
    runtime: ServiceRuntime,
    dead_letters: RecordingDeadLetters,
) -> None:
    await deliver(granted(10))
    before = (await usage(api), await announcements(runtime))
    assert await deliver(solo_counted(logged("solo"), 1)) is Outcome.IGNORED
    assert await deliver(expiring_soon(3)) is Outcome.IGNORED
    assert (await usage(api), await announcements(runtime)) == before
    assert dead_letters.sent == []


async def test_a_client_under_the_credit_policies_shows_held_and_expired_credits(
    deliver: Deliver, api: AsyncClient
) -> None:
    workouts, ledger = credit_policies()
    await play(deliver, sorted(workouts + ledger, key=lambda step: step[1]))
    assert await usage(api) == CREDIT_POLICIES_USAGE
    chart = (await api.get(f"/api/analytics/{CLIENT}/session-usage/chart")).text
    assert chart.splitlines()[7:] == CREDIT_POLICIES_CREDIT_CHART


async def test_a_balance_below_zero_is_shown_as_it_is(deliver: Deliver, api: AsyncClient) -> None:
    await deliver(deducted(1, 0, 1))
    assert (await usage(api))["credits"] == {
        "total": 0,
        "used": 1,
        "remaining": -1,
        "held": 0,
        "expired": 0,
        "available": -1,
    }


async def test_a_rejected_deduction_changes_nothing(
    deliver: Deliver, api: AsyncClient, runtime: ServiceRuntime
) -> None:
    await deliver(granted(10))
    assert await deliver(deduction_rejected(1)) is Outcome.IGNORED
    assert (await usage(api))["credits"] == {
        "total": 10,
        "used": 0,
        "remaining": 10,
        "held": 0,
        "expired": 0,
        "available": 10,
    }
    assert len(await announcements(runtime)) == 1


async def test_duplicates_change_nothing_and_announce_nothing(
    deliver: Deliver, api: AsyncClient, runtime: ServiceRuntime
) -> None:
    workout = logged("solo")
    assert await deliver(workout, event_id="log") is Outcome.APPLIED
    assert await deliver(granted(10), event_id="grant") is Outcome.APPLIED
    assert await deliver(workout, event_id="log") is Outcome.DUPLICATE
    assert await deliver(granted(10), event_id="grant") is Outcome.DUPLICATE
    # The same facts sent again under new ids (a producer re-publishing): applied, no change.
    assert await deliver(workout, event_id="log-again") is Outcome.APPLIED
    assert await deliver(granted(10), event_id="grant-again") is Outcome.APPLIED
    assert await usage(api) == {
        "total": 1,
        "solo": {"count": 1, "percentage": 100.0},
        "trainerLed": {"count": 0, "percentage": 0.0},
        "trainerAssisted": {"count": 0, "percentage": 0.0},
        "group": {"count": 0, "percentage": 0.0},
        "credits": {
            "total": 10,
            "used": 0,
            "remaining": 10,
            "held": 0,
            "expired": 0,
            "available": 10,
        },
    }
    assert len(await announcements(runtime)) == 2


async def test_usage_is_announced_exactly_when_it_changes(
    deliver: Deliver, runtime: ServiceRuntime
) -> None:
    workout = logged("trainer-led", "planned")
    story = [
        (workout, 0),  # planned: nothing counted yet
        (status_changed(workout, "in_progress"), 0),
        (status_changed(workout, "completed", previous="in_progress"), 1),
        (granted(10), 1),
        (deduction_rejected(2), 0),
        (deducted(1, 10, 1), 1),
        (logged("solo", "planned"), 0),
        (status_changed(workout, "completed"), 0),  # completed again: same count
        (status_changed(workout, "cancelled", previous="completed"), 1),
        (restored(1, 10, 0), 1),
    ]
    for n, (payload, expected) in enumerate(story):
        before = len(await announcements(runtime))
        await deliver(payload)
        assert len(await announcements(runtime)) - before == expected, (n, payload)


async def test_the_announcement_carries_the_usage_and_the_time_of_its_change(
    deliver: Deliver, runtime: ServiceRuntime
) -> None:
    await deliver(granted(10), time=day(0))
    await deliver(logged("solo"), time=day(1))
    await deliver(logged("trainer-led"), time=day(2))
    await deliver(logged("solo"), time=day(3))
    ten_unused = {"total": 10, "used": 0, "remaining": 10, "held": 0, "expired": 0, "available": 10}
    assert [a.to_json_dict() for a in await announcements(runtime)] == [
        {
            "userId": CLIENT,
            "total": 0,
            "solo": {"count": 0, "percentage": 0.0},
            "trainerLed": {"count": 0, "percentage": 0.0},
            "trainerAssisted": {"count": 0, "percentage": 0.0},
            "group": {"count": 0, "percentage": 0.0},
            "credits": ten_unused,
            "asOf": "2026-01-05T09:00:00Z",
        },
        {
            "userId": CLIENT,
            "total": 1,
            "solo": {"count": 1, "percentage": 100.0},
            "trainerLed": {"count": 0, "percentage": 0.0},
            "trainerAssisted": {"count": 0, "percentage": 0.0},
            "group": {"count": 0, "percentage": 0.0},
            "credits": ten_unused,
            "asOf": "2026-01-06T09:00:00Z",
        },
        {
            "userId": CLIENT,
            "total": 2,
            "solo": {"count": 1, "percentage": 50.0},
            "trainerLed": {"count": 1, "percentage": 50.0},
            "trainerAssisted": {"count": 0, "percentage": 0.0},
            "group": {"count": 0, "percentage": 0.0},
            "credits": ten_unused,
            "asOf": "2026-01-07T09:00:00Z",
        },
        {
            "userId": CLIENT,
            "total": 3,
            "solo": {"count": 2, "percentage": 66.7},
            "trainerLed": {"count": 1, "percentage": 33.3},
            "trainerAssisted": {"count": 0, "percentage": 0.0},
            "group": {"count": 0, "percentage": 0.0},
            "credits": ten_unused,
            "asOf": "2026-01-08T09:00:00Z",
        },
    ]


async def test_announcements_go_to_the_usage_topic_keyed_by_client(
    deliver: Deliver, runtime: ServiceRuntime
) -> None:
    await deliver(logged("solo"))
    async with runtime.database.transaction() as db:
        rows = (await db.execute(select(outbox.c.topic, outbox.c.key))).all()
    assert [(row.topic, row.key) for row in rows] == [
        (runtime.settings.kafka_topic_prefix + "analytics.session-usage", str(CLIENT).encode())
    ]


async def test_as_of_never_moves_back_for_an_older_change_applied_later(
    deliver: Deliver, runtime: ServiceRuntime
) -> None:
    await deliver(logged("solo"), time=day(5))
    await deliver(granted(10), time=day(1))  # the ledger's topic is behind the workouts'
    latest = (await announcements(runtime))[-1]
    assert (latest.credits.total, latest.as_of) == (10, day(5))


async def test_every_interleaving_of_workouts_and_ledger_gives_the_same_usage(
    deliver: Deliver, api: AsyncClient, runtime: ServiceRuntime, owner_database: Database
) -> None:
    """Each topic keeps its own order; the two interleave in every possible way."""
    workouts, ledger = example_1()
    size = len(workouts) + len(ledger)
    finals = set()
    for ledger_positions in itertools.combinations(range(size), len(ledger)):
        await _start_afresh(owner_database)
        from_workouts, from_ledger = iter(workouts), iter(ledger)
        order = [
            next(from_ledger) if n in ledger_positions else next(from_workouts) for n in range(size)
        ]
        await play(deliver, order)
        assert await usage(api) == EXAMPLE_1_USAGE, [event_id for event_id, _, _ in order]
        finals.add((await announcements(runtime))[-1])
    # The last announcement, asOf included, is the same whatever the order.
    assert len(finals) == 1


async def test_a_rebuild_from_the_topics_ends_where_the_service_was(
    deliver: Deliver, api: AsyncClient, runtime: ServiceRuntime, owner_database: Database
) -> None:
    workouts, ledger = example_1()
    undone = workouts[0][2]
    assert isinstance(undone, WorkoutLogged)
    workouts.append(("w2-undo", day(13), status_changed(undone, "cancelled")))
    history = sorted(workouts + ledger, key=lambda step: step[1])
    await play(deliver, history)
    before = (await usage(api), (await announcements(runtime))[-1])

    await _start_afresh(owner_database)  # the operator drops the database and replays the topics
    await play(deliver, history)
    assert (await usage(api), (await announcements(runtime))[-1]) == before
    assert before[0]["solo"] == {"count": 3, "percentage": 60.0}

    # Replaying again over the rebuilt store (a consumer group reset) is all duplicates.
    for event_id, time, payload in history:
        assert await deliver(payload, event_id=event_id, time=time) is Outcome.DUPLICATE


async def test_a_workout_that_changes_hands_is_dead_lettered_with_the_reason(
    deliver: Deliver, api: AsyncClient, dead_letters: RecordingDeadLetters
) -> None:
    workout = logged("solo")
    await deliver(workout)
    moved = logged("solo", workout_id=workout.workout_id, user_id=OTHER_CLIENT)
    assert await deliver(moved) is Outcome.DEAD_LETTERED
    assert dead_letters.reasons == [
        f"workout {workout.workout_id} belongs to client {CLIENT}, not {OTHER_CLIENT}"
    ]
    assert (await usage(api))["total"] == 1
    assert (await usage(api, OTHER_CLIENT))["total"] == 0


@pytest.mark.parametrize("solo", [(2, 1), (1, 2)])
async def test_two_of_three_is_66_7_and_one_of_three_is_33_3(
    deliver: Deliver, api: AsyncClient, solo: tuple[int, int]
) -> None:
    solo_count, trainer_led_count = solo
    for _ in range(solo_count):
        await deliver(logged("solo"))
    for _ in range(trainer_led_count):
        await deliver(logged("trainer-led"))
    body = await usage(api)
    shares = {1: 33.3, 2: 66.7}
    assert (body["solo"]["percentage"], body["trainerLed"]["percentage"]) == (
        shares[solo_count],
        shares[trainer_led_count],
    )


@pytest.mark.parametrize("user_id", ["abc", "1.5", "0", "-3", str(2**63), "99999999999999999999"])
async def test_a_bad_user_id_gets_a_422_saying_what_is_wrong(
    api: AsyncClient, user_id: str
) -> None:
    response = await api.get(f"/api/analytics/{user_id}/session-usage")
    assert response.status_code == 422
    [problem] = response.json()["detail"]
    assert problem["loc"] == ["path", "user_id"]


async def test_the_largest_storable_user_id_is_served(api: AsyncClient) -> None:
    assert await usage(api, 2**63 - 1) == ZERO_USAGE


async def _start_afresh(owner_database: Database) -> None:
    async with owner_database.transaction() as db:
        await db.execute(
            text(
                "truncate workouts, session_usage, trainer_clients, workout_days,"
                " trainer_sessions, session_places, outbox, processed_events"
            )
        )


async def test_a_batch_announces_each_clients_usage_once_as_it_left_it(
    runtime: ServiceRuntime, api: AsyncClient
) -> None:
    """The usage topic is compacted: of the states one batch takes a client through, only
    the last is announced, with the latest change's time and in its event's trace."""
    steps = [
        (CLIENT, granted(10), day(1)),
        (CLIENT, logged("solo"), day(2)),
        (OTHER_CLIENT, logged("solo", user_id=OTHER_CLIENT), day(3)),
        (CLIENT, logged("trainer-led"), day(4)),
        (CLIENT, logged("solo"), day(3)),  # an older workout, applied last
    ]
    traces = [TraceParent.start() for _ in steps]
    records = [
        replace(
            consumed(payload, time=time, topic_prefix=runtime.settings.kafka_topic_prefix),
            offset=offset,
            headers=[*record_headers(), ("traceparent", trace.header.encode())],
        )
        for offset, ((_, payload, time), trace) in enumerate(zip(steps, traces, strict=True))
    ]
    outcome = await runtime.consumer.process_batch(records)
    assert outcome.outcomes == [Outcome.APPLIED] * len(steps)

    announced = {
        event.payload.user_id: (event.payload, record)
        for record in await outbox_records(runtime.database)
        for event in [parse_event(record.value or b"")]
        if isinstance(event.payload, SessionUsageUpdated)
    }
    assert len(await announcements(runtime)) == 2  # one per client
    usage_of_client, record = announced[CLIENT]
    assert usage_of_client.to_json_dict() == {
        "userId": CLIENT,
        **(await usage(api)),
        "asOf": "2026-01-09T09:00:00Z",  # day(4)
    }
    assert counts_of(usage_of_client) == (3, 2, 1)
    # In the trace of the client's last change (the older workout), in a span of its own.
    parent = TraceParent.parse(dict(record.headers)["traceparent"].decode())
    assert parent is not None
    assert parent.trace_id == traces[-1].trace_id
    _, other_record = announced[OTHER_CLIENT]
    other_parent = TraceParent.parse(dict(other_record.headers)["traceparent"].decode())
    assert other_parent is not None
    assert other_parent.trace_id == traces[2].trace_id
