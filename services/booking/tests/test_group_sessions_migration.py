"""The migration that adds group sessions, on a database that holds bookings already: it
builds exactly the tables the models describe and keeps every session; going down refuses
while group sessions exist (unless told to lose them) and keeps the sessions again."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest

from booking.models import Base
from servicekit.db import libpq_url
from servicekit.migrations import DataLossRefused
from testkit.helpers import downgrade, migrate, schema_differences

pytestmark = pytest.mark.infra

SERVICE = Path(__file__).resolve().parents[1]


def execute(url: str, statement: str, *values: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(libpq_url(url), autocommit=True) as connection:
        cursor = connection.execute(statement, values)
        return cursor.fetchall() if cursor.description else []


def sessions(url: str) -> list[tuple[Any, ...]]:
    return execute(url, "select id, user_id, status from sessions order by id")


@pytest.fixture
def with_bookings(scratch_databases: Callable[[str], str]) -> str:
    """A database at revision 0004 holding two sessions and the id sequence past them."""
    url = scratch_databases("booking")
    migrate(SERVICE, url, "0004")
    for session_id, status in ((1, "scheduled"), (2, "completed")):
        execute(
            url,
            "insert into sessions (id, user_id, trainer_id, session_date, duration, status,"
            " booking_received, created_at, updated_at)"
            " values (%s, 7, 70, now(), 60, %s, true, now(), now())",
            session_id,
            status,
        )
    execute(url, "select setval('session_ids', 2)")
    return url


def test_the_migrated_database_matches_the_models(
    service_database: Callable[[str], str],
) -> None:
    assert schema_differences(service_database("booking"), Base.metadata) == []


def test_going_up_keeps_every_session_and_group_sessions_take_the_next_ids(
    with_bookings: str,
) -> None:
    before = sessions(with_bookings)
    migrate(SERVICE, with_bookings, "0005")
    assert sessions(with_bookings) == before
    assert execute(with_bookings, "select count(*) from group_sessions") == [(0,)]
    [(next_id,)] = execute(with_bookings, "select nextval('session_ids')")
    assert next_id == 3


def test_the_tables_refuse_what_no_group_session_holds(with_bookings: str) -> None:
    migrate(SERVICE, with_bookings, "0005")
    group = (
        "insert into group_sessions (id, trainer_id, session_date, duration, capacity, status,"
        " schedule_received, created_at, updated_at)"
        " values (%s, 70, now(), 60, %s, %s, true, now(), now())"
    )
    execute(with_bookings, group, 3, 100, "scheduled")
    for capacity, status in ((0, "scheduled"), (101, "scheduled"), (5, "in_progress")):
        with pytest.raises(psycopg.errors.CheckViolation):
            execute(with_bookings, group, 4, capacity, status)
    place = "insert into group_participants (session_id, user_id, status) values (%s, 8, %s)"
    execute(with_bookings, place, 3, "joined")
    with pytest.raises(psycopg.errors.CheckViolation):
        execute(with_bookings, place, 3, "maybe")
    with pytest.raises(psycopg.errors.ForeignKeyViolation):
        execute(with_bookings, place, 99, "joined")
    with pytest.raises(psycopg.errors.UniqueViolation):
        execute(with_bookings, place, 3, "left")


def test_going_down_refuses_while_group_sessions_exist_and_keeps_every_session(
    with_bookings: str,
) -> None:
    before = sessions(with_bookings)
    migrate(SERVICE, with_bookings, "0005")
    execute(
        with_bookings,
        "insert into group_sessions (id, trainer_id, session_date, duration, capacity, status,"
        " schedule_received, created_at, updated_at)"
        " values (3, 70, now(), 60, 5, 'completed', true, now(), now())",
    )
    execute(
        with_bookings,
        "insert into group_participants (session_id, user_id, status, joined_at)"
        " values (3, 8, 'attended', now()), (3, 9, 'no_show', now())",
    )
    with pytest.raises(DataLossRefused, match="1 group session in the database"):
        downgrade(SERVICE, with_bookings, "0004")
    assert execute(with_bookings, "select count(*) from group_participants") == [(2,)]

    downgrade(SERVICE, with_bookings, "0004", allow_data_loss=True)
    assert sessions(with_bookings) == before
    assert execute(with_bookings, "select to_regclass('group_sessions')") == [(None,)]
    # Back up again, empty.
    migrate(SERVICE, with_bookings, "0005")
    assert execute(with_bookings, "select count(*) from group_participants") == [(0,)]
    assert sessions(with_bookings) == before


def test_going_down_with_no_group_session_needs_no_permission(with_bookings: str) -> None:
    migrate(SERVICE, with_bookings, "0005")
    downgrade(SERVICE, with_bookings, "0004")
    assert execute(with_bookings, "select to_regclass('group_participants')") == [(None,)]
