"""The migrations tell the spec's story on a real database: workouts logged before session
types existed become solo and stay valid; the session-type rule holds from then on; and the
change can be rolled back and forward again without losing a workout. Rolling it back while
trainer-led workouts exist would drop their links: it refuses, unless told it may. The view
of group sessions (0006) comes and goes with every workout kept, and a replay of booking's
topic fills it again."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from httpx import ASGITransport, AsyncClient
from sqlalchemy import MetaData

from servicekit.consumer import Outcome
from servicekit.db import libpq_url
from servicekit.migrations import DataLossRefused
from servicekit.tables import plumbing_metadata
from testkit.events import booked
from testkit.helpers import consumed, downgrade, migrate, schema_differences
from workouts.main import create_app
from workouts.models import Base
from workouts.settings import Settings

from .groups import BOOKING, GROUP, JOINED_AT, joined, scheduled

pytestmark = pytest.mark.infra

SERVICE = Path(__file__).resolve().parents[1]
LEGACY_WORKOUT = uuid.UUID("00000000-0000-4000-8000-000000000001")
LEGACY_PLANNED = uuid.UUID("00000000-0000-4000-8000-000000000002")


@pytest.fixture
def database_at_0002(scratch_databases: Callable[[str], str]) -> str:
    url = scratch_databases("workouts")
    migrate(SERVICE, url, "0002")
    return url


@pytest.fixture
def connection(database_at_0002: str) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    with psycopg.connect(libpq_url(database_at_0002), autocommit=True) as connection:
        yield connection


def log_legacy_workouts(connection: psycopg.Connection[tuple[object, ...]]) -> None:
    """Workouts as the service stored them before session types, in plain SQL."""
    connection.execute(
        "insert into workout_sessions"
        " (id, user_id, title, date, status, total_weight, total_reps, total_sets,"
        "  experience_points)"
        " values (%s, 123, 'Morning Chest Day', '2025-12-01T07:00:00Z', 'completed',"
        "  600, 10, 1, 22),"
        " (%s, 123, 'Leg day', '2025-12-03T07:00:00Z', 'planned', 0, 0, 0, 0)",
        (LEGACY_WORKOUT, LEGACY_PLANNED),
    )
    connection.execute(
        "insert into exercises (workout_id, position, name) values (%s, 1, 'Bench press')",
        (LEGACY_WORKOUT,),
    )
    connection.execute(
        "insert into exercise_sets (workout_id, exercise_position, position, reps, weight)"
        " values (%s, 1, 1, 10, 60)",
        (LEGACY_WORKOUT,),
    )


def insert_workout(
    connection: psycopg.Connection[tuple[object, ...]],
    session_type: str,
    session_id: int | None,
    trainer_id: int | None,
) -> None:
    connection.execute(
        "insert into workout_sessions"
        " (id, user_id, title, date, session_type, session_id, trainer_id)"
        " values (gen_random_uuid(), 123, 'Workout', now(), %s, %s, %s)",
        (session_type, session_id, trainer_id),
    )


def session_links(connection: psycopg.Connection[tuple[object, ...]]) -> list[tuple[object, ...]]:
    return connection.execute(
        "select id, session_type, session_id, trainer_id from workout_sessions order by id"
    ).fetchall()


def columns(connection: psycopg.Connection[tuple[object, ...]]) -> set[object]:
    rows = connection.execute(
        "select column_name from information_schema.columns where table_name = 'workout_sessions'"
    ).fetchall()
    return {row[0] for row in rows}


async def test_workouts_logged_before_session_types_become_solo_and_survive_a_rollback(
    database_at_0002: str,
    connection: psycopg.Connection[tuple[object, ...]],
    staff_headers: dict[str, str],
) -> None:
    assert "session_type" not in columns(connection)
    log_legacy_workouts(connection)

    migrate(SERVICE, database_at_0002, "head")
    assert session_links(connection) == [
        (LEGACY_WORKOUT, "solo", None, None),
        (LEGACY_PLANNED, "solo", None, None),
    ]

    downgrade(SERVICE, database_at_0002, "0002")
    assert {"session_type", "session_id", "trainer_id"}.isdisjoint(columns(connection))
    rows = connection.execute("select id, title from workout_sessions order by id").fetchall()
    assert rows == [(LEGACY_WORKOUT, "Morning Chest Day"), (LEGACY_PLANNED, "Leg day")]
    assert connection.execute("select count(*) from exercise_sets").fetchone() == (1,)

    migrate(SERVICE, database_at_0002, "head")
    assert [link[1] for link in session_links(connection)] == ["solo", "solo"]

    # And the service reads them as solo workouts.
    app = create_app(Settings(database_url=database_at_0002))
    try:
        async with AsyncClient(
            transport=ASGITransport(app=app), base_url="http://w", headers=staff_headers
        ) as api:
            body = (await api.get(f"/api/workout/sessions/{LEGACY_WORKOUT}")).json()
    finally:
        await app.state.runtime.database.dispose()
    assert (body["sessionType"], body["sessionId"], body["trainerId"]) == ("solo", None, None)
    assert body["exercises"] == [
        {"order": 1, "name": "Bench press", "sets": [{"order": 1, "reps": 10, "weight": 60.0}]}
    ]


@pytest.mark.parametrize(
    ("session_type", "session_id", "trainer_id"),
    [
        ("trainer-led", None, 456),
        ("trainer-led", 789, None),
        ("trainer-led", None, None),
        ("solo", None, 456),
        ("solo", 789, None),
        ("group", None, None),
    ],
)
def test_the_database_refuses_a_workout_breaking_the_session_type_rule(
    database_at_0002: str,
    connection: psycopg.Connection[tuple[object, ...]],
    session_type: str,
    session_id: int | None,
    trainer_id: int | None,
) -> None:
    migrate(SERVICE, database_at_0002, "head")
    with pytest.raises(psycopg.errors.CheckViolation, match="session_link_matches_type"):
        insert_workout(connection, session_type, session_id, trainer_id)


def test_the_database_takes_solo_and_trainer_led_workouts_that_keep_the_rule(
    database_at_0002: str, connection: psycopg.Connection[tuple[object, ...]]
) -> None:
    migrate(SERVICE, database_at_0002, "head")
    insert_workout(connection, "trainer-led", 789, 456)
    insert_workout(connection, "solo", None, None)
    connection.execute(
        "insert into workout_sessions (id, user_id, title, date) values (gen_random_uuid(), 1,"
        " 'Type not given', now())"
    )
    types = connection.execute("select session_type from workout_sessions").fetchall()
    assert sorted(str(row[0]) for row in types) == ["solo", "solo", "trainer-led"]


def test_the_tables_match_the_models(database_at_0002: str) -> None:
    migrate(SERVICE, database_at_0002, "head")
    expected = MetaData()
    for table in (*Base.metadata.tables.values(), *plumbing_metadata.tables.values()):
        table.to_metadata(expected)
    assert schema_differences(database_at_0002, expected) == []


def table_names(connection: psycopg.Connection[tuple[object, ...]]) -> set[object]:
    rows = connection.execute(
        "select table_name from information_schema.tables where table_schema = 'public'"
    ).fetchall()
    return {row[0] for row in rows}


def revision_of(connection: psycopg.Connection[tuple[object, ...]]) -> object:
    row = connection.execute("select version_num from alembic_version").fetchone()
    return row[0] if row else None


REFUSAL = (
    "refusing to downgrade below revision 0003 with {count} in the database: the downgrade "
    "drops their session and trainer, and they would come back as solo workouts. To downgrade "
    "anyway, losing that, add `-x allow-data-loss=true` to the alembic command"
)


def test_a_downgrade_refuses_while_trainer_led_workouts_exist_and_changes_nothing(
    database_at_0002: str, connection: psycopg.Connection[tuple[object, ...]]
) -> None:
    migrate(SERVICE, database_at_0002, "head")
    head = revision_of(connection)
    insert_workout(connection, "trainer-led", 789, 456)
    insert_workout(connection, "trainer-led", 790, 456)
    insert_workout(connection, "solo", None, None)
    links, tables = session_links(connection), table_names(connection)

    with pytest.raises(DataLossRefused) as refused:
        downgrade(SERVICE, database_at_0002, "0002")

    assert str(refused.value) == REFUSAL.format(count="2 trainer-led workouts")
    # One transaction: the later revisions undone on the way down are back as well.
    assert revision_of(connection) == head
    assert session_links(connection) == links
    assert table_names(connection) == tables


def test_a_downgrade_with_only_solo_workouts_goes_ahead_and_keeps_them(
    database_at_0002: str, connection: psycopg.Connection[tuple[object, ...]]
) -> None:
    migrate(SERVICE, database_at_0002, "head")
    insert_workout(connection, "solo", None, None)
    insert_workout(connection, "solo", None, None)

    downgrade(SERVICE, database_at_0002, "0002")

    assert revision_of(connection) == "0002"
    assert connection.execute("select count(*) from workout_sessions").fetchone() == (2,)


def test_a_downgrade_told_it_may_lose_data_drops_the_links_of_trainer_led_workouts(
    database_at_0002: str, connection: psycopg.Connection[tuple[object, ...]]
) -> None:
    migrate(SERVICE, database_at_0002, "head")
    insert_workout(connection, "trainer-led", 789, 456)

    downgrade(SERVICE, database_at_0002, "0002", allow_data_loss=True)

    assert revision_of(connection) == "0002"
    assert {"session_type", "session_id", "trainer_id"}.isdisjoint(columns(connection))
    # The workout stays; upgraded again, it is solo: its session and trainer are gone.
    migrate(SERVICE, database_at_0002, "head")
    assert [link[1:] for link in session_links(connection)] == [("solo", None, None)]


def alembic(url: str, *arguments: str) -> subprocess.CompletedProcess[str]:
    """The alembic command line, as an operator runs it."""
    command = [sys.executable, "-m", "alembic", "-c", str(SERVICE / "alembic.ini")]
    return subprocess.run(
        [*command, "-x", f"url={url}", *arguments],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def test_the_alembic_command_says_how_many_and_how_to_force_it(
    database_at_0002: str, connection: psycopg.Connection[tuple[object, ...]]
) -> None:
    migrate(SERVICE, database_at_0002, "head")
    insert_workout(connection, "trainer-led", 789, 456)

    refused = alembic(database_at_0002, "downgrade", "0002")

    assert refused.returncode != 0
    failed = [line for line in refused.stdout.splitlines() if line.startswith("FAILED")]
    assert failed == ["FAILED: " + REFUSAL.format(count="1 trainer-led workout")]
    assert "Traceback" not in refused.stderr

    forced = alembic(database_at_0002, "-x", "allow-data-loss=true", "downgrade", "0002")

    assert forced.returncode == 0, forced.stderr
    assert revision_of(connection) == "0002"


# --- 0005: trainer-assisted and group workouts ----------------------------------------------


def insert_linked(
    connection: psycopg.Connection[tuple[object, ...]],
    session_type: str,
    *,
    session_id: int | None = None,
    trainer_id: int | None = None,
    plan_id: str | None = None,
    group_size: int | None = None,
) -> None:
    connection.execute(
        "insert into workout_sessions (id, user_id, title, date, session_type, session_id,"
        " trainer_id, plan_id, group_size)"
        " values (gen_random_uuid(), 123, 'Workout', now(), %s, %s, %s, %s, %s)",
        (session_type, session_id, trainer_id, plan_id, group_size),
    )


def types_and_links(connection: psycopg.Connection[tuple[object, ...]]) -> list[tuple[object, ...]]:
    return connection.execute(
        "select session_type, session_id, trainer_id, plan_id, group_size"
        " from workout_sessions order by session_type, id"
    ).fetchall()


def test_trainer_assisted_and_group_workouts_continue_the_story_and_every_old_row_stays(
    database_at_0002: str, connection: psycopg.Connection[tuple[object, ...]]
) -> None:
    migrate(SERVICE, database_at_0002, "0004")
    log_legacy_workouts(connection)
    insert_workout(connection, "trainer-led", 789, 456)
    before = session_links(connection)

    migrate(SERVICE, database_at_0002, "0005")
    assert session_links(connection) == before
    insert_linked(connection, "trainer-assisted", trainer_id=456, plan_id="strength-base")
    insert_linked(connection, "group", session_id=790, trainer_id=456, group_size=5)
    insert_linked(connection, "group", session_id=791, trainer_id=456)
    for breaking in (
        {"session_type": "trainer-assisted", "trainer_id": 456},  # no plan
        {"session_type": "trainer-assisted", "trainer_id": 456, "plan_id": "p", "session_id": 1},
        {"session_type": "group", "trainer_id": 456},  # no session
        {"session_type": "solo", "plan_id": "p"},
        {"session_type": "trainer-led", "session_id": 1, "trainer_id": 456, "group_size": 3},
    ):
        with pytest.raises(psycopg.errors.CheckViolation, match="session_link_matches_type"):
            insert_linked(connection, **breaking)
    assert [row[0] for row in types_and_links(connection)] == [
        "group",
        "group",
        "solo",
        "solo",
        "trainer-assisted",
        "trainer-led",
    ]


def test_a_downgrade_below_0005_refuses_while_new_kinds_exist_and_when_told_keeps_the_rest(
    database_at_0002: str, connection: psycopg.Connection[tuple[object, ...]]
) -> None:
    migrate(SERVICE, database_at_0002, "head")
    head = revision_of(connection)
    insert_workout(connection, "trainer-led", 789, 456)
    insert_workout(connection, "solo", None, None)
    insert_linked(connection, "trainer-assisted", trainer_id=456, plan_id="strength-base")
    insert_linked(connection, "group", session_id=790, trainer_id=456, group_size=5)
    everything = types_and_links(connection)

    with pytest.raises(DataLossRefused, match="with 2 trainer-assisted or group workouts"):
        downgrade(SERVICE, database_at_0002, "0004")
    assert revision_of(connection) == head
    assert types_and_links(connection) == everything

    downgrade(SERVICE, database_at_0002, "0004", allow_data_loss=True)
    assert revision_of(connection) == "0004"
    assert {"plan_id", "group_size"}.isdisjoint(columns(connection))
    assert session_links(connection)[0][1:] in {("trainer-led", 789, 456), ("solo", None, None)}
    kinds = connection.execute("select session_type from workout_sessions").fetchall()
    assert sorted(str(row[0]) for row in kinds) == ["solo", "trainer-led"]
    migrate(SERVICE, database_at_0002, "head")
    assert len(types_and_links(connection)) == 2


# --- 0006: the view of group sessions ------------------------------------------------------


def remember_processed(
    connection: psycopg.Connection[tuple[object, ...]], *events: tuple[str, str]
) -> None:
    """Events the consumer applied, as (event id, type)."""
    for event_id, event_type in events:
        connection.execute(
            "insert into processed_events (consumer, event_id, event_type)"
            " values ('workouts', %s, %s)",
            (event_id, event_type),
        )


def processed(connection: psycopg.Connection[tuple[object, ...]]) -> list[tuple[object, ...]]:
    return connection.execute(
        "select event_id, event_type from processed_events order by event_id"
    ).fetchall()


async def test_the_view_of_group_sessions_comes_and_goes_and_a_replay_fills_it_again(
    database_at_0002: str, connection: psycopg.Connection[tuple[object, ...]]
) -> None:
    migrate(SERVICE, database_at_0002, "0005")
    log_legacy_workouts(connection)
    insert_workout(connection, "trainer-led", 789, 456)
    insert_linked(connection, "group", session_id=GROUP, trainer_id=456, group_size=5)
    connection.execute("insert into sessions values (789, 123, 456, 'completed')")
    remember_processed(connection, ("booked-789", "SessionBooked"))
    workouts = types_and_links(connection)
    sessions = connection.execute("select * from sessions").fetchall()

    migrate(SERVICE, database_at_0002, "0006")
    assert types_and_links(connection) == workouts
    assert connection.execute("select * from sessions").fetchall() == sessions
    assert connection.execute("select count(*) from group_places").fetchone() == (0,)
    connection.execute(
        "insert into group_sessions (session_id, trainer_id) values (%s, 456)", (GROUP,)
    )
    connection.execute("insert into group_places values (%s, 123, 'joined')", (GROUP,))
    remember_processed(
        connection, ("scheduled-40", "GroupSessionScheduled"), ("joined-40", "ParticipantJoined")
    )
    with pytest.raises(psycopg.errors.ForeignKeyViolation):
        connection.execute("insert into group_places values (41, 123, 'joined')")
    with pytest.raises(psycopg.errors.CheckViolation, match="status_is_known"):
        connection.execute("insert into group_places values (%s, 124, 'booked')", (GROUP,))
    assert connection.execute("select cancelled from group_sessions").fetchone() == (False,)

    downgrade(SERVICE, database_at_0002, "0005")
    assert revision_of(connection) == "0005"
    assert {"group_sessions", "group_places"}.isdisjoint(table_names(connection))
    assert types_and_links(connection) == workouts
    assert connection.execute("select * from sessions").fetchall() == sessions
    # The group events are forgotten, so that a replay applies them again.
    assert processed(connection) == [("booked-789", "SessionBooked")]

    migrate(SERVICE, database_at_0002, "head")
    assert connection.execute("select count(*) from group_sessions").fetchone() == (0,)
    app = create_app(Settings(database_url=database_at_0002))
    consumer = app.state.runtime.consumer
    try:
        replayed = [
            consumed(booked(789, 123, 456), event_id="booked-789", source=BOOKING),
            consumed(scheduled(trainer_id=456), event_id="scheduled-40", source=BOOKING),
            consumed(joined(123, trainer_id=456), event_id="joined-40", source=BOOKING),
        ]
        assert [await consumer.process(record) for record in replayed] == [
            Outcome.DUPLICATE,
            Outcome.APPLIED,
            Outcome.APPLIED,
        ]
    finally:
        await app.state.runtime.database.dispose()
    assert connection.execute("select * from group_places").fetchall() == [
        (GROUP, 123, "joined", JOINED_AT)
    ]
