"""The session-type indexes serve the queries they were made for, on a table big enough
that PostgreSQL would rather scan it without them."""

from __future__ import annotations

from collections.abc import Callable

import psycopg
import pytest

from servicekit.db import libpq_url
from testkit.plans import fill, plan_nodes

pytestmark = pytest.mark.infra

CLIENTS = 2_000
WORKOUTS_EACH = 10


def plan(connection: psycopg.Connection[tuple[object, ...]], query: str) -> list[str]:
    """Every index the plan of `query` uses."""
    return [index for _, index in plan_nodes(connection, query) if index is not None]


@pytest.fixture
def busy_database(service_database: Callable[[str], str]) -> str:
    url = service_database("workouts")
    fill(
        url,
        "insert into workout_sessions"
        " (id, user_id, title, date, status, session_type, session_id, trainer_id)"
        " select gen_random_uuid(), n %% %(clients)s + 1, 'w', now(),"
        "   (array['planned', 'completed', 'skipped'])[n %% 3 + 1],"
        "   case when n %% 4 = 0 then 'trainer-led' else 'solo' end,"
        "   case when n %% 4 = 0 then n end, case when n %% 4 = 0 then 7 end"
        " from generate_series(1, %(rows)s) as n",
        {"clients": CLIENTS, "rows": CLIENTS * WORKOUTS_EACH},
        table="workout_sessions",
    )
    return url


def test_usage_counts_by_client_status_and_type_use_their_index(busy_database: str) -> None:
    with psycopg.connect(libpq_url(busy_database)) as connection:
        used = plan(
            connection,
            "select count(*) from workout_sessions"
            " where user_id = 42 and status = 'completed' and session_type = 'solo'",
        )
    assert "workout_sessions_by_user_status_type" in used


def test_the_workouts_of_one_booked_session_are_found_by_index(busy_database: str) -> None:
    with psycopg.connect(libpq_url(busy_database)) as connection:
        used = plan(connection, "select id from workout_sessions where session_id = 400")
    assert used == ["workout_sessions_by_session"]
