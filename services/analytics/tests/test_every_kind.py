"""Trainer-assisted and group workouts beside solo and trainer-led, on a real database: each
kind counted and its share of all of them, in the usage answer, its announcement, its chart
and the studio-wide answer (whose whole days come from `workout_days`, kept in step with the
workouts whatever their story)."""

from __future__ import annotations

import random
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from httpx import AsyncClient
from sqlalchemy import text

from contracts.events import SessionType, SessionUsageUpdated, WorkoutLogged
from servicekit.db import Database
from servicekit.runtime import ServiceRuntime
from testkit.events import CLIENT, TRAINER, status_changed, workout
from testkit.helpers import Deliver, outbox_events

from .stories import OTHER_CLIENT

pytestmark = pytest.mark.infra

WHEN = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
KINDS = ("solo", "trainerLed", "trainerAssisted", "group")


def of_kind(
    kind: SessionType,
    *,
    user_id: int = CLIENT,
    when: datetime = WHEN,
    status: str = "completed",
    session_id: int = 1,
) -> WorkoutLogged:
    """A workout of `kind` with the fields its type requires."""
    links: dict[SessionType, dict[str, Any]] = {
        SessionType.SOLO: {},
        SessionType.TRAINER_LED: {"session_id": session_id, "trainer_id": TRAINER},
        SessionType.TRAINER_ASSISTED: {"trainer_id": TRAINER, "plan_id": "plan-1"},
        SessionType.GROUP: {"session_id": session_id, "trainer_id": TRAINER, "group_size": 5},
    }
    link = links[kind]
    return WorkoutLogged(
        workout_id=uuid.uuid4(),
        user_id=user_id,
        title="Workout",
        date=when,
        status=status,
        session_type=kind,
        **link,
    )


async def usage(api: AsyncClient, query: str = "") -> dict[str, Any]:
    response = await api.get(f"/api/analytics/{CLIENT}/session-usage?{query}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def counts(body: dict[str, Any]) -> tuple[int, ...]:
    return (body["total"], *(body[kind]["count"] for kind in KINDS))


async def test_every_kind_is_counted_and_each_share_is_of_all_of_them(
    deliver: Deliver, api: AsyncClient, runtime: ServiceRuntime
) -> None:
    for kind in SessionType:
        await deliver(of_kind(kind))
    body = await usage(api)
    assert body["total"] == 4
    assert [body[kind] for kind in KINDS] == [{"count": 1, "percentage": 25.0}] * 4
    latest = [
        event.payload
        for event in await outbox_events(runtime.database)
        if isinstance(event.payload, SessionUsageUpdated)
    ][-1]
    assert (latest.trainer_assisted.count, latest.group.count, latest.total) == (1, 1, 4)
    assert latest.trainer_assisted.percentage == latest.group.percentage == 25.0


async def test_a_third_each_rounds_as_the_spec_does(deliver: Deliver, api: AsyncClient) -> None:
    for kind in (SessionType.SOLO, SessionType.TRAINER_ASSISTED, SessionType.GROUP):
        await deliver(of_kind(kind))
    body = await usage(api)
    assert [body[kind]["percentage"] for kind in KINDS] == [33.3, 0.0, 33.3, 33.3]


async def test_a_group_workout_undone_leaves_its_count(deliver: Deliver, api: AsyncClient) -> None:
    group = of_kind(SessionType.GROUP)
    await deliver(group)
    await deliver(status_changed(group, "skipped"))
    assert counts(await usage(api)) == (0, 0, 0, 0, 0)
    await deliver(status_changed(group, "completed"))
    assert counts(await usage(api)) == (1, 0, 0, 0, 1)


async def test_ranges_count_the_new_kinds_by_their_date(deliver: Deliver, api: AsyncClient) -> None:
    await deliver(of_kind(SessionType.TRAINER_ASSISTED, when=WHEN))
    await deliver(of_kind(SessionType.GROUP, when=WHEN + timedelta(days=30)))
    assert counts(await usage(api, "from=2026-03-02&to=2026-03-02")) == (1, 0, 0, 1, 0)
    assert counts(await usage(api, "from=2026-03-03")) == (1, 0, 0, 0, 1)


async def test_the_chart_shows_the_kinds_the_client_has(deliver: Deliver, api: AsyncClient) -> None:
    await deliver(of_kind(SessionType.SOLO))
    await deliver(of_kind(SessionType.GROUP))
    response = await api.get(f"/api/analytics/{CLIENT}/session-usage/chart")
    assert response.status_code == 200, response.text
    lines = response.text.splitlines()
    assert [line.split(":")[0] for line in lines[2:5]] == [
        "Solo Workouts",
        "Trainer Sessions",
        "Group Sessions",
    ]
    assert "\x1b[" not in response.text
    coloured = await api.get(f"/api/analytics/{CLIENT}/session-usage/chart?colour=true")
    assert "\x1b[32m" in coloured.text
    assert "\x1b[35m" in coloured.text


async def studio(api: AsyncClient, query: str = "") -> dict[str, Any]:
    response = await api.get(f"/api/analytics/session-usage?{query}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_the_studio_wide_answer_counts_every_kind(deliver: Deliver, api: AsyncClient) -> None:
    for kind in SessionType:
        await deliver(of_kind(kind, user_id=OTHER_CLIENT))
    await deliver(of_kind(SessionType.GROUP))
    body = await studio(api, "from=2026-03-01&to=2026-03-31")
    assert counts(body) == (5, 1, 1, 1, 2)
    assert body["group"]["percentage"] == 40.0
    assert [(week["week"], counts(week)) for week in body["weeks"]] == [
        ("2026-03-02", (5, 1, 1, 1, 2))
    ]


def by_kind(workouts: list[WorkoutLogged]) -> tuple[int, ...]:
    found = Counter(w.session_type for w in workouts)
    ordered = [
        found[SessionType.SOLO],
        found[SessionType.TRAINER_LED],
        found[SessionType.TRAINER_ASSISTED],
        found[SessionType.GROUP],
    ]
    return (sum(ordered), *ordered)


async def test_the_studio_wide_answer_agrees_with_the_workouts_for_any_range(
    deliver: Deliver, api: AsyncClient, runtime: ServiceRuntime
) -> None:
    """Random workouts over ten days, some undone and redone: for ranges with bounds on and
    between midnights, whole days (from `workout_days`) and parts of days (from the
    workouts) add up to what counting the completed workouts one by one gives."""
    chance = random.Random(15)
    start = datetime(2026, 3, 1, tzinfo=UTC)
    completed: dict[uuid.UUID, WorkoutLogged] = {}
    for n in range(120):
        kind = chance.choice(list(SessionType))
        when = start + timedelta(minutes=chance.randrange(10 * 24 * 60))
        logged = of_kind(kind, user_id=1000 + n % 7, when=when, session_id=n + 1)
        await deliver(logged)
        completed[logged.workout_id] = logged
        if chance.random() < 0.2:
            await deliver(status_changed(logged, "cancelled"))
            del completed[logged.workout_id]
            if chance.random() < 0.5:
                await deliver(status_changed(logged, "completed", previous="cancelled"))
                completed[logged.workout_id] = logged
    spans = [
        (start, start + timedelta(days=10)),
        (start + timedelta(hours=7, minutes=13), start + timedelta(days=6, hours=2)),
        (start + timedelta(days=2), start + timedelta(days=2, hours=23)),
        (start + timedelta(hours=20), start + timedelta(days=1, hours=4)),
        (start + timedelta(days=3, hours=5), None),
        (None, start + timedelta(days=4, hours=13)),
    ]
    for begin, end in spans:
        query = "&".join(
            f"{name}={moment.isoformat().replace('+00:00', 'Z')}"
            for name, moment in (("from", begin), ("to", end))
            if moment is not None
        )
        expected = [
            w
            for w in completed.values()
            if (begin is None or w.date >= begin) and (end is None or w.date < end)
        ]
        body = await studio(api, query)
        assert counts(body) == by_kind(expected), query
        weeks = sum(
            (Counter({k: week[k]["count"] for k in KINDS}) for week in body["weeks"]), Counter()
        )
        assert sum(weeks.values()) == len(expected), query
    assert counts(await studio(api)) == by_kind(list(completed.values()))
    # The days kept agree with the workouts, row for row.
    async with runtime.database.transaction() as db:
        kept = set(
            await db.execute(
                text("select day, session_type, completed from workout_days where completed <> 0")
            )
        )
        counted = set(
            await db.execute(
                text(
                    "select (workout_date at time zone 'UTC')::date, session_type, count(*)::int"
                    " from workouts where status = 'completed' group by 1, 2"
                )
            )
        )
    assert kept == counted


async def test_the_studio_wide_total_without_a_range_counts_undated_workouts(
    deliver: Deliver, api: AsyncClient
) -> None:
    never_logged = workout(None, status="planned", title="Morning Chest Day")
    await deliver(status_changed(never_logged, "completed"))
    await deliver(of_kind(SessionType.GROUP))
    body = await studio(api)
    assert counts(body) == (2, 1, 0, 0, 1)
    assert [counts(week) for week in body["weeks"]] == [(1, 0, 0, 0, 1)]


async def test_a_rebuild_keeps_the_same_days(
    deliver: Deliver, api: AsyncClient, owner_database: Database
) -> None:
    history = [of_kind(kind, when=WHEN + timedelta(days=n)) for n, kind in enumerate(SessionType)]
    for logged in history:
        await deliver(logged, event_id=f"log-{logged.workout_id}")
    before = await studio(api, "from=2026-03-01")
    async with owner_database.transaction() as db:
        await db.execute(
            text("truncate workouts, session_usage, workout_days, outbox, processed_events")
        )
    for logged in history:
        await deliver(logged, event_id=f"log-{logged.workout_id}")
    for logged in history:  # duplicates: nothing moves
        await deliver(logged, event_id=f"log-{logged.workout_id}")
    assert await studio(api, "from=2026-03-01") == before
