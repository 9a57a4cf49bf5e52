"""The migration that gives booking its view of clients' credits, on a database that has
consumed the ledger already: it forgets the ledger events it applied, so that a replay of
`credits.ledger` applies the whole ledger again, and keeps every other event it remembers."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest

from servicekit.db import libpq_url
from testkit.helpers import downgrade, migrate

pytestmark = pytest.mark.infra

SERVICE = Path(__file__).resolve().parents[1]
REMEMBERED = [
    ("e1", "SessionBooked"),
    ("e2", "SessionCreditDeducted"),
    ("e3", "SessionCompleted"),
    ("e4", "SessionCreditRestored"),
]


def processed(url: str) -> list[tuple[str, str]]:
    with psycopg.connect(libpq_url(url)) as connection:
        rows = connection.execute(
            "select event_id, event_type from processed_events order by event_id"
        )
        return [(row[0], row[1]) for row in rows]


def test_the_ledger_events_applied_before_are_forgotten_and_the_rest_kept(
    scratch_databases: Callable[[str], str],
) -> None:
    url = scratch_databases("booking")
    migrate(SERVICE, url, "0003")
    with psycopg.connect(libpq_url(url), autocommit=True) as connection:
        for event_id, event_type in REMEMBERED:
            connection.execute(
                "insert into processed_events (consumer, event_id, event_type)"
                " values ('booking', %s, %s)",
                (event_id, event_type),
            )

    migrate(SERVICE, url, "0004")

    assert processed(url) == [("e1", "SessionBooked"), ("e3", "SessionCompleted")]
    with psycopg.connect(libpq_url(url)) as connection:
        for table in ("client_balances", "unlimited_packages"):
            assert connection.execute(f"select count(*) from {table}").fetchone() == (0,)  # noqa: S608

    downgrade(SERVICE, url, "0003")
    assert processed(url) == [("e1", "SessionBooked"), ("e3", "SessionCompleted")]
