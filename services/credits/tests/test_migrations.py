"""The migrations build exactly the tables the models describe; the group places' migration
keeps every entry of the ledger, and going down never deletes one."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest

from credits.models import Base
from servicekit.db import libpq_url
from servicekit.migrations import DataLossRefused
from testkit.helpers import downgrade, migrate, schema_differences

pytestmark = pytest.mark.infra

SERVICE = Path(__file__).resolve().parents[1]


def test_the_migrated_database_matches_the_models(
    service_database: Callable[[str], str],
) -> None:
    assert schema_differences(service_database("credits"), Base.metadata) == []


@pytest.fixture
def at_0005(scratch_databases: Callable[[str], str]) -> str:
    url = scratch_databases("credits")
    migrate(SERVICE, url, "0005")
    return url


def add_entry(url: str, kind: str, session_id: int | None, user_id: int, amount: int) -> uuid.UUID:
    id = uuid.uuid4()
    with psycopg.connect(libpq_url(url), autocommit=True) as connection:
        connection.execute(
            "insert into ledger_entries (id, user_id, kind, amount, session_id, caused_by)"
            " values (%s, %s, %s, %s, %s, 'test')",
            (id, user_id, kind, amount, session_id),
        )
    return id


def entry_ids(url: str) -> set[uuid.UUID]:
    with psycopg.connect(libpq_url(url)) as connection:
        return {row[0] for row in connection.execute("select id from ledger_entries")}


def test_going_to_places_keeps_every_entry_and_charges_each_client_of_a_session_once(
    at_0005: str,
) -> None:
    before = {
        add_entry(at_0005, "grant", None, 1, 10),
        add_entry(at_0005, "deduction", 7, 1, -1),
        add_entry(at_0005, "restoration", 7, 1, 1),
        add_entry(at_0005, "forfeit", 8, 1, -1),
    }
    migrate(SERVICE, at_0005, "0006")
    assert entry_ids(at_0005) == before
    # Two clients of one group session are each charged once; the same client twice is not.
    add_entry(at_0005, "deduction", 40, 101, -1)
    add_entry(at_0005, "deduction", 40, 102, -1)
    with pytest.raises(psycopg.errors.UniqueViolation):
        add_entry(at_0005, "deduction", 40, 101, -1)
    with pytest.raises(psycopg.errors.UniqueViolation):
        add_entry(at_0005, "deduction", 7, 1, -1)


def test_going_down_keeps_one_to_one_entries_and_refuses_while_group_places_exist(
    at_0005: str,
) -> None:
    migrate(SERVICE, at_0005, "0006")
    kept = {add_entry(at_0005, "deduction", 7, 1, -1)}
    with psycopg.connect(libpq_url(at_0005), autocommit=True) as connection:
        connection.execute(
            "insert into group_places (session_id, user_id, trainer_id, status)"
            " values (40, 101, 8, 'scheduled')"
        )
    with pytest.raises(DataLossRefused, match="group place"):
        downgrade(SERVICE, at_0005, "0005")
    downgrade(SERVICE, at_0005, "0005", allow_data_loss=True)
    assert entry_ids(at_0005) == kept

    migrate(SERVICE, at_0005, "0006")
    add_entry(at_0005, "deduction", 40, 101, -1)
    add_entry(at_0005, "deduction", 40, 102, -1)
    with pytest.raises(DataLossRefused, match="several clients for one session"):
        downgrade(SERVICE, at_0005, "0005", allow_data_loss=True)
    assert len(entry_ids(at_0005)) == 3
