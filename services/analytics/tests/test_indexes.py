"""A client's usage over a date range is read from the index on client, status and date alone, on a
table big enough that PostgreSQL would rather scan it without the index; the studio's whole
days from `workout_days`, part of a day from the index on the completed workouts' day; a
trainer's figures from the indexes on trainer, status and date."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime

import psycopg
import pytest

from analytics.queries import counts_within, studio_days, trainer_queries, workouts_of_days
from analytics.rules import DateRange
from servicekit.db import libpq_url
from testkit.plans import PSYCOPG, fill, plan_nodes, plan_of

pytestmark = pytest.mark.infra

CLIENTS = 2_000
WORKOUTS_EACH = 20


def range_plan(
    connection: psycopg.Connection[tuple[object, ...]], span: DateRange
) -> list[tuple[str, str | None]]:
    """The plan of a client's range query, as the service sends it."""
    compiled = counts_within(42, span).compile(dialect=PSYCOPG)
    return plan_nodes(connection, str(compiled), compiled.params)


@pytest.fixture
def busy_database(service_database: Callable[[str], str]) -> str:
    """A year of workouts of 2,000 clients, vacuumed (so that the index alone answers)."""
    url = service_database("analytics")
    fill(
        url,
        "insert into workouts"
        " (workout_id, user_id, session_type, status, changed_by, workout_date)"
        " select gen_random_uuid(), n %% %(clients)s + 1,"
        "   case when n %% 3 = 0 then 'trainer-led' else 'solo' end,"
        "   (array['planned', 'completed', 'skipped'])[n %% 3 + 1], 'e',"
        "   timestamptz '2026-01-01' + (n %% 365) * interval '1 day'"
        " from generate_series(1, %(rows)s) as n",
        {"clients": CLIENTS, "rows": CLIENTS * WORKOUTS_EACH},
        table="workouts",
    )
    return url


@pytest.mark.parametrize(
    "span",
    [
        DateRange(start=datetime(2026, 1, 1, tzinfo=UTC), end=datetime(2027, 1, 1, tzinfo=UTC)),
        DateRange(start=datetime(2026, 3, 1, tzinfo=UTC)),
        DateRange(end=datetime(2026, 2, 1, tzinfo=UTC)),
    ],
)
def test_a_clients_range_is_read_from_the_index_alone(busy_database: str, span: DateRange) -> None:
    with psycopg.connect(libpq_url(busy_database)) as connection:
        nodes = range_plan(connection, span)
    assert ("Index Only Scan", "workouts_by_user_status_and_date") in nodes, nodes


@pytest.fixture
def busy_studio(busy_database: str) -> str:
    """The same year, its days counted, and 20,000 booked sessions of 200 trainers with a
    place each; trainer-assisted workouts of those trainers."""
    fill(
        busy_database,
        "insert into workout_days (day, session_type, completed)"
        " select (workout_date at time zone 'UTC')::date, session_type, count(*)"
        " from workouts where status = 'completed' group by 1, 2",
        {},
        table="workout_days",
    )
    fill(
        busy_database,
        "insert into trainer_sessions (session_id, kind, trainer_id, session_date, status)"
        " select n, case when n %% 4 = 0 then 'group' else 'one-to-one' end, n %% 200 + 1,"
        "   timestamptz '2026-01-01' + (n %% 365) * interval '1 day',"
        "   (array['scheduled', 'completed', 'no_show', 'cancelled'])[n %% 4 + 1]"
        " from generate_series(1, 20000) as n",
        {},
        table="trainer_sessions",
    )
    fill(
        busy_database,
        "insert into session_places (session_id, user_id, outcome)"
        " select n, n %% 2000 + 1, 'attended' from generate_series(1, 20000) as n",
        {},
        table="session_places",
    )
    fill(
        busy_database,
        "update workouts set session_type = 'trainer-assisted', trainer_id = user_id %% 200 + 1"
        " where user_id %% 10 = 0",
        {},
        table="workouts",
    )
    return busy_database


YEAR = DateRange(start=datetime(2026, 1, 1, tzinfo=UTC), end=datetime(2027, 1, 1, tzinfo=UTC))


def test_the_studio_wide_year_is_read_from_the_days_and_part_of_a_day_by_its_index(
    busy_studio: str,
) -> None:
    # A year of days: at most 366 rows per type, whatever the number of workouts (here the
    # whole table, which PostgreSQL may scan rather than read by its key).
    days = plan_of(busy_studio, studio_days(date(2026, 1, 1), date(2027, 1, 1)))
    assert all(index in (None, "workout_days_pkey") for _, index in days), days
    march = plan_of(busy_studio, studio_days(date(2026, 3, 1), date(2026, 3, 8)))
    assert any(index == "workout_days_pkey" for _, index in march), march
    edge = DateRange(
        start=datetime(2026, 3, 1, 10, tzinfo=UTC), end=datetime(2026, 3, 2, tzinfo=UTC)
    )
    nodes = plan_of(busy_studio, workouts_of_days(edge, [date(2026, 3, 1)]))
    assert any(index == "workouts_completed_by_day" for _, index in nodes), nodes
    assert ("Seq Scan", None) not in nodes, nodes


def test_a_clients_range_still_reads_its_own_index_beside_the_studios(busy_studio: str) -> None:
    with psycopg.connect(libpq_url(busy_studio)) as connection:
        nodes = range_plan(connection, YEAR)
    assert ("Index Only Scan", "workouts_by_user_status_and_date") in nodes, nodes


def test_a_trainers_figures_are_read_from_their_indexes(busy_studio: str) -> None:
    for query in trainer_queries(42, YEAR):
        nodes = plan_of(busy_studio, query)
        assert ("Seq Scan", None) not in nodes, (query, nodes)
        assert {index for _, index in nodes} & {
            "trainer_sessions_by_trainer_status_and_date",
            "trainer_assisted_by_trainer_and_date",
        }, nodes
