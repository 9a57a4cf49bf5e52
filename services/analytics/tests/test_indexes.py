"""A client's usage over a date range is read from the index on client, status and date alone, on a
table big enough that PostgreSQL would rather scan it without the index."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import psycopg
import pytest
from sqlalchemy.dialects.postgresql.psycopg import PGDialect_psycopg

from analytics.queries import counts_within
from analytics.rules import DateRange
from servicekit.db import libpq_url
from testkit.plans import fill, plan_nodes

pytestmark = pytest.mark.infra

CLIENTS = 2_000
WORKOUTS_EACH = 20
#: Renders the query as the service sends it (SQLAlchemy's dialects are not annotated).
PSYCOPG = PGDialect_psycopg()  # type: ignore[no-untyped-call]


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
