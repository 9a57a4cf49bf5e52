"""The migrations build exactly the tables the models describe; going down from held and
expired credits, or from workout dates, refuses to lose them unless told it may."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest

from analytics.models import Base
from servicekit.db import libpq_url
from servicekit.migrations import DataLossRefused
from testkit.helpers import downgrade, migrate, schema_differences

pytestmark = pytest.mark.infra

SERVICE = Path(__file__).resolve().parents[1]


def test_the_migrated_database_matches_the_models(
    service_database: Callable[[str], str],
) -> None:
    assert schema_differences(service_database("analytics"), Base.metadata) == []


@pytest.fixture
def migrated(scratch_databases: Callable[[str], str]) -> str:
    url = scratch_databases("analytics")
    migrate(SERVICE, url)
    return url


def usage_row(url: str, *, held: int, expired: int) -> None:
    with psycopg.connect(libpq_url(url), autocommit=True) as connection:
        connection.execute(
            "insert into session_usage (user_id, credits_total, credits_used, credits_held,"
            " credits_expired) values (123, 10, 2, %s, %s)",
            (held, expired),
        )


def credit_columns(url: str) -> set[str]:
    with psycopg.connect(libpq_url(url)) as connection:
        rows = connection.execute(
            "select column_name from information_schema.columns"
            " where table_name = 'session_usage' and column_name like 'credits_%'"
        ).fetchall()
    return {row[0] for row in rows}


def test_a_downgrade_that_would_lose_held_or_expired_credits_refuses_unless_told(
    migrated: str,
) -> None:
    usage_row(migrated, held=1, expired=3)

    with pytest.raises(DataLossRefused, match="with 1 credit balance in the database"):
        downgrade(SERVICE, migrated, "0003")
    assert "credits_expired" in credit_columns(migrated)

    downgrade(SERVICE, migrated, "0003", allow_data_loss=True)
    assert credit_columns(migrated) == {"credits_total", "credits_used"}


def test_a_downgrade_with_nothing_held_or_expired_goes_ahead_and_up_again_reads_zeros(
    migrated: str,
) -> None:
    usage_row(migrated, held=0, expired=0)
    downgrade(SERVICE, migrated, "0003")
    migrate(SERVICE, migrated)
    with psycopg.connect(libpq_url(migrated)) as connection:
        row = connection.execute(
            "select credits_total, credits_used, credits_held, credits_expired from session_usage"
        ).fetchone()
    assert row == (10, 2, 0, 0)


def workout_row(url: str, *, dated: bool) -> None:
    with psycopg.connect(libpq_url(url), autocommit=True) as connection:
        connection.execute(
            "insert into workouts (workout_id, user_id, session_type, status, changed_by,"
            " workout_date) values (gen_random_uuid(), 123, 'solo', 'completed', 'e1', %s)",
            ("2026-01-05T09:00:00Z" if dated else None,),
        )


def workout_rows(url: str) -> list[tuple[object, ...]]:
    with psycopg.connect(libpq_url(url)) as connection:
        return connection.execute(
            "select user_id, session_type, status, changed_by from workouts"
        ).fetchall()


def test_upgrading_to_dates_keeps_every_workout_undated_and_down_again_keeps_them(
    scratch_databases: Callable[[str], str],
) -> None:
    """0005 on a database holding workouts: old rows stay, without a date (a rebuild dates
    them); going down with none dated drops nothing else."""
    url = scratch_databases("analytics")
    migrate(SERVICE, url, "0004")
    with psycopg.connect(libpq_url(url), autocommit=True) as connection:
        connection.execute(
            "insert into workouts (workout_id, user_id, session_type, status, changed_by)"
            " values (gen_random_uuid(), 123, 'trainer-led', 'completed', 'e0')"
        )
    migrate(SERVICE, url)
    with psycopg.connect(libpq_url(url)) as connection:
        dates = connection.execute("select workout_date from workouts").fetchall()
    assert dates == [(None,)]
    downgrade(SERVICE, url, "0004")
    assert workout_rows(url) == [(123, "trainer-led", "completed", "e0")]


def test_a_downgrade_that_would_lose_workout_dates_refuses_unless_told(migrated: str) -> None:
    workout_row(migrated, dated=True)
    workout_row(migrated, dated=False)

    with pytest.raises(DataLossRefused, match="with 1 workout in the database"):
        downgrade(SERVICE, migrated, "0004")
    downgrade(SERVICE, migrated, "0004", allow_data_loss=True)
    assert len(workout_rows(migrated)) == 2


def rows(url: str, query: str) -> list[tuple[object, ...]]:
    with psycopg.connect(libpq_url(url)) as connection:
        return connection.execute(query).fetchall()


def run(url: str, statement: str) -> None:
    with psycopg.connect(libpq_url(url), autocommit=True) as connection:
        connection.execute(statement)


def test_upgrading_to_every_kind_keeps_every_row_and_counts_the_days_and_down_again(
    scratch_databases: Callable[[str], str],
) -> None:
    """0006 on a database holding workouts and usage: every row stays (no trainer known,
    the new counts 0), the studio's days are counted from the dated completed workouts;
    going down with nothing of the new kinds drops only what 0006 added."""
    url = scratch_databases("analytics")
    migrate(SERVICE, url, "0005")
    run(
        url,
        "insert into workouts (workout_id, user_id, session_type, status, changed_by,"
        " workout_date) values"
        " (gen_random_uuid(), 1, 'solo', 'completed', 'e1', '2026-01-05T09:00:00Z'),"
        " (gen_random_uuid(), 2, 'solo', 'completed', 'e2', '2026-01-05T23:59:00Z'),"
        " (gen_random_uuid(), 1, 'trainer-led', 'completed', 'e3', '2026-01-06T00:00:00Z'),"
        " (gen_random_uuid(), 1, 'solo', 'planned', 'e4', '2026-01-06T10:00:00Z'),"
        " (gen_random_uuid(), 1, 'solo', 'completed', 'e5', null)",
    )
    run(
        url,
        "insert into session_usage (user_id, solo_count, trainer_led_count, credits_total)"
        " values (1, 2, 1, 10), (2, 1, 0, 0)",
    )
    before = rows(
        url,
        "select workout_id, user_id, session_type, status, changed_by,"
        " workout_date from workouts order by changed_by",
    )

    migrate(SERVICE, url)
    assert (
        rows(
            url,
            "select workout_id, user_id, session_type, status, changed_by,"
            " workout_date from workouts order by changed_by",
        )
        == before
    )
    assert rows(url, "select distinct trainer_id from workouts") == [(None,)]
    assert rows(
        url,
        "select user_id, solo_count, trainer_led_count, trainer_assisted_count, group_count"
        " from session_usage order by user_id",
    ) == [(1, 2, 1, 0, 0), (2, 1, 0, 0, 0)]
    assert rows(
        url, "select day::text, session_type, completed from workout_days order by 1, 2"
    ) == [
        ("2026-01-05", "solo", 2),
        ("2026-01-06", "trainer-led", 1),
    ]
    run(
        url,
        "insert into workouts (workout_id, user_id, session_type, status, changed_by)"
        " values (gen_random_uuid(), 3, 'group', 'completed', 'e6')",
    )
    run(url, "delete from workouts where changed_by = 'e6'")

    downgrade(SERVICE, url, "0005")
    assert (
        rows(
            url,
            "select workout_id, user_id, session_type, status, changed_by,"
            " workout_date from workouts order by changed_by",
        )
        == before
    )
    assert rows(url, "select to_regclass('workout_days'), to_regclass('trainer_sessions')") == [
        (None, None)
    ]


def test_a_downgrade_that_would_lose_the_new_kinds_or_trainers_refuses_unless_told(
    migrated: str,
) -> None:
    run(
        migrated,
        "insert into workouts (workout_id, user_id, session_type, status, changed_by,"
        " workout_date, trainer_id) values"
        " (gen_random_uuid(), 1, 'solo', 'completed', 'e1', '2026-01-05T09:00:00Z', null),"
        " (gen_random_uuid(), 1, 'group', 'completed', 'e2', '2026-01-05T09:00:00Z', 456),"
        " (gen_random_uuid(), 1, 'trainer-assisted', 'completed', 'e3', null, 456)",
    )
    run(
        migrated,
        "insert into trainer_sessions (session_id, kind, trainer_id, session_date, status)"
        " values (7, 'group', 456, '2026-01-05T09:00:00Z', 'completed');"
        " insert into session_places values (7, 1, 'attended')",
    )

    with pytest.raises(DataLossRefused, match="with 4 rows in the database"):
        downgrade(SERVICE, migrated, "0005")
    assert len(rows(migrated, "select * from trainer_sessions")) == 1

    downgrade(SERVICE, migrated, "0005", allow_data_loss=True)
    assert rows(migrated, "select session_type, changed_by from workouts") == [("solo", "e1")]
    with pytest.raises(psycopg.errors.CheckViolation):
        run(
            migrated,
            "insert into workouts (workout_id, user_id, session_type, status, changed_by)"
            " values (gen_random_uuid(), 1, 'group', 'completed', 'e9')",
        )
    migrate(SERVICE, migrated)
    assert rows(migrated, "select day::text, session_type, completed from workout_days") == [
        ("2026-01-05", "solo", 1)
    ]


def test_ledger_entries_up_with_every_row_kept_and_down_refuses_to_lose_entries_unless_told(
    scratch_databases: Callable[[str], str],
) -> None:
    """0007 on a database holding usage: every row stays, the entries start empty (a rebuild
    fills them); going down refuses while entries are held, unless told it may."""
    url = scratch_databases("analytics")
    migrate(SERVICE, url, "0006")
    run(url, "insert into session_usage (user_id, credits_total, credits_used) values (1, 10, 2)")
    migrate(SERVICE, url)
    assert rows(url, "select user_id, credits_total, credits_used from session_usage") == [
        (1, 10, 2)
    ]
    assert rows(url, "select count(*) from ledger_entries") == [(0,)]
    run(
        url,
        "insert into ledger_entries (event_id, user_id, entry_type, change, remaining,"
        " session_id, detail, occurred_at) values"
        " ('e1', 1, 'SessionCreditDeducted', -1, 8, 7, 'workout-logged', '2026-01-05T09:00Z')",
    )

    with pytest.raises(DataLossRefused, match="with 1 ledger entry in the database"):
        downgrade(SERVICE, url, "0006")
    assert rows(url, "select event_id, change from ledger_entries") == [("e1", -1)]

    downgrade(SERVICE, url, "0006", allow_data_loss=True)
    assert rows(url, "select to_regclass('ledger_entries')") == [(None,)]
    assert rows(url, "select user_id, credits_total from session_usage") == [(1, 10)]
    migrate(SERVICE, url)
    assert rows(url, "select count(*) from ledger_entries") == [(0,)]
