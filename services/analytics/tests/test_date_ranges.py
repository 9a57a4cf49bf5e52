"""Usage over a date range (`?from=&to=`) on a real database: which workouts a range holds
at its edges, a status change keeping the date, the chart, and bad ranges refused."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from httpx import AsyncClient

from testkit.events import CLIENT, status_changed, workout
from testkit.helpers import Deliver

from .stories import OTHER_CLIENT, balance, granted

pytestmark = pytest.mark.infra

JAN_31_LATE = datetime(2026, 1, 31, 23, 30, tzinfo=UTC)
FEB_1_EARLY = datetime(2026, 2, 1, 0, 0, tzinfo=UTC)
MAR_1 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


async def usage(api: AsyncClient, query: str) -> dict[str, Any]:
    response = await api.get(f"/api/analytics/{CLIENT}/session-usage?{query}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def counts(body: dict[str, Any]) -> tuple[int, int, int]:
    return body["total"], body["solo"]["count"], body["trainerLed"]["count"]


@pytest.fixture
async def three_months(deliver: Deliver) -> None:
    """A solo workout late on 31 January, a trainer-led one at midnight on 1 February, a
    solo one in March; 20 credits with 1 used."""
    await deliver(workout(None, date=JAN_31_LATE, title="Morning Chest Day"))
    await deliver(workout(1, date=FEB_1_EARLY))
    await deliver(workout(None, date=MAR_1, title="Morning Chest Day"))
    await deliver(granted(20, 1))


@pytest.mark.usefixtures("three_months")
@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", (3, 2, 1)),
        # Days include the whole of both days given, in UTC.
        ("from=2026-01-31&to=2026-01-31", (1, 1, 0)),
        ("from=2026-02-01&to=2026-02-28", (1, 0, 1)),
        ("from=2026-02-01", (2, 1, 1)),
        ("to=2026-02-01", (2, 1, 1)),
        # Times: `from` included, `to` excluded.
        ("from=2026-02-01T00:00:00Z", (2, 1, 1)),
        ("to=2026-02-01T00:00:00Z", (1, 1, 0)),
        ("from=2026-01-31T23:30:00Z&to=2026-01-31T23:30:01Z", (1, 1, 0)),
        # An offset is honoured: 01:00 at +01:00 is midnight UTC.
        ("to=2026-02-01T01:00:00%2B01:00", (1, 1, 0)),
        ("from=2026-04-01", (0, 0, 0)),
    ],
)
async def test_a_range_counts_the_workouts_it_holds_at_its_edges(
    api: AsyncClient, query: str, expected: tuple[int, int, int]
) -> None:
    assert counts(await usage(api, query)) == expected


@pytest.mark.usefixtures("three_months")
async def test_percentages_are_of_the_range_and_credits_stay_current(api: AsyncClient) -> None:
    body = await usage(api, "from=2026-01-01&to=2026-02-28")
    assert body["solo"] == {"count": 1, "percentage": 50.0}
    assert body["trainerLed"] == {"count": 1, "percentage": 50.0}
    assert body["credits"] == balance(20, 1).to_json_dict()


async def test_a_status_change_keeps_the_date_the_workout_was_logged_with(
    deliver: Deliver, api: AsyncClient
) -> None:
    planned = workout(None, status="planned", date=MAR_1, title="Morning Chest Day")
    await deliver(planned)
    await deliver(status_changed(planned, "completed"))
    assert counts(await usage(api, "from=2026-03-01&to=2026-03-01")) == (1, 1, 0)
    assert counts(await usage(api, "to=2026-02-28")) == (0, 0, 0)


async def test_a_workout_known_only_from_a_status_change_is_left_out_of_ranges(
    deliver: Deliver, api: AsyncClient
) -> None:
    """Its date is unknown: counted in all-time usage, in no range."""
    never_logged = workout(None, status="planned", date=MAR_1, title="Morning Chest Day")
    await deliver(status_changed(never_logged, "completed"))
    assert counts(await usage(api, "")) == (1, 1, 0)
    assert counts(await usage(api, "from=2000-01-01")) == (0, 0, 0)


@pytest.mark.usefixtures("three_months")
async def test_the_chart_takes_the_same_range(api: AsyncClient) -> None:
    response = await api.get(f"/api/analytics/{CLIENT}/session-usage/chart?from=2026-03-01")
    assert response.status_code == 200, response.text
    assert "Solo Workouts:    ████████████████ 1 (100.0%)" in response.text
    assert "Trainer Sessions: " in response.text
    assert "0 (0.0%)" in response.text


@pytest.mark.parametrize(
    ("query", "says"),
    [
        ("from=2026-13-01", "`from` is not a date"),
        ("to=yesterday", "`to` is not an RFC 3339 time or a date"),
        ("from=2026-02-01T10:00:00", "needs an offset"),
        ("from=2026-02-02&to=2026-02-01", "is not after `from`"),
        ("from=2026-02-01T10:00:00Z&to=2026-02-01T10:00:00Z", "the range is empty"),
        ("from=" + "9" * 41, "at most 40 characters"),
    ],
)
async def test_a_bad_range_gets_a_422_saying_what_is_wrong(
    api: AsyncClient, query: str, says: str
) -> None:
    for path in ("session-usage", "session-usage/chart"):
        response = await api.get(f"/api/analytics/{CLIENT}/{path}?{query}")
        assert response.status_code == 422, response.text
        assert says in response.text


async def studio(api: AsyncClient, query: str = "") -> dict[str, Any]:
    response = await api.get(f"/api/analytics/session-usage?{query}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


@pytest.mark.usefixtures("three_months")
async def test_the_studio_wide_usage_counts_every_client_and_each_week(
    deliver: Deliver, api: AsyncClient
) -> None:
    await deliver(workout(None, user_id=OTHER_CLIENT, date=JAN_31_LATE, title="Morning Chest Day"))
    await deliver(workout(None, status="planned", date=JAN_31_LATE, title="Morning Chest Day"))
    body = await studio(api)
    assert counts(body) == (4, 3, 1)
    assert body["solo"]["percentage"] == 75.0
    # 31 January 2026 is a Saturday, 1 February a Sunday: one week, from Monday the 26th.
    assert [(week["week"], counts(week)) for week in body["weeks"]] == [
        ("2026-01-26", (3, 2, 1)),
        ("2026-02-23", (1, 1, 0)),
    ]


@pytest.mark.usefixtures("three_months")
async def test_the_studio_wide_usage_takes_a_range(api: AsyncClient) -> None:
    body = await studio(api, "from=2026-02-01&to=2026-02-28")
    assert counts(body) == (1, 0, 1)
    assert [week["week"] for week in body["weeks"]] == ["2026-01-26"]
    response = await api.get("/api/analytics/session-usage?from=someday")
    assert response.status_code == 422
    assert "`from` is not an RFC 3339 time or a date" in response.text
