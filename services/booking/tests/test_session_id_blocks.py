"""The migration to blocks of session ids on a database holding sessions: every session keeps
its id, and a sequence dragged out of the API's block by another producer's ids comes back."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest

from contracts.session_ids import block_of, session_id
from servicekit.db import libpq_url
from testkit.helpers import downgrade, migrate

pytestmark = pytest.mark.infra

SERVICE = Path(__file__).resolve().parents[1]


def book(url: str, *ids: int) -> None:
    """Sessions as the service stored them before blocks: each id moved the sequence."""
    with psycopg.connect(libpq_url(url), autocommit=True) as connection:
        for booked in ids:
            connection.execute(
                "insert into sessions (id, user_id, trainer_id, session_date, duration, status,"
                " booking_received, created_at, updated_at)"
                " values (%s, 123, 456, now(), 60, 'scheduled', true, now(), now())",
                (booked,),
            )
            connection.execute(
                "select setval('session_ids', %s) from session_ids where last_value < %s",
                (booked, booked),
            )


def next_ids(url: str, count: int) -> list[int]:
    with psycopg.connect(libpq_url(url), autocommit=True) as connection:
        return [
            int(row[0])
            for _ in range(count)
            for row in connection.execute("select nextval('session_ids')")
        ]


def stored_ids(url: str) -> list[int]:
    with psycopg.connect(libpq_url(url)) as connection:
        return [row[0] for row in connection.execute("select id from sessions order by id")]


@pytest.fixture
def database_at_0002(scratch_databases: Callable[[str], str]) -> str:
    url = scratch_databases("booking")
    migrate(SERVICE, url, "0002")
    return url


def test_a_sequence_dragged_into_another_block_comes_back_to_the_api_block(
    database_at_0002: str,
) -> None:
    outside = [session_id(3, 1), session_id(3, 900), session_id(40, 5)]
    book(database_at_0002, 1, 2, 3, *outside)
    assert next_ids(database_at_0002, 1) == [session_id(40, 5) + 1]  # dragged
    migrate(SERVICE, database_at_0002)
    assert stored_ids(database_at_0002) == [1, 2, 3, *outside]
    assert next_ids(database_at_0002, 2) == [4, 5]


def test_a_sequence_inside_the_api_block_stays_where_it_is(database_at_0002: str) -> None:
    # Ids another producer took inside the API's block may be anywhere below the sequence.
    book(database_at_0002, 1, 2, 1_000_000, session_id(2, 1))
    migrate(SERVICE, database_at_0002)
    assert next_ids(database_at_0002, 1) == [1_000_001]


def test_an_api_block_without_sessions_starts_at_one(database_at_0002: str) -> None:
    book(database_at_0002, session_id(5, 1))
    migrate(SERVICE, database_at_0002)
    assert next_ids(database_at_0002, 1) == [1]


def test_the_sequence_ends_with_the_api_block_until_downgraded(database_at_0002: str) -> None:
    last = block_of(0)[-1]
    book(database_at_0002, last)
    migrate(SERVICE, database_at_0002)
    with pytest.raises(psycopg.errors.SequenceGeneratorLimitExceeded):
        next_ids(database_at_0002, 1)
    downgrade(SERVICE, database_at_0002, "0002")
    assert next_ids(database_at_0002, 1) == [last + 1]
    assert stored_ids(database_at_0002) == [last]
