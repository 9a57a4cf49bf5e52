"""Every service's migrations run up to head and back down to nothing on a real database."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest

from contracts.services import SERVICES, Service
from servicekit.db import libpq_url
from testkit.helpers import downgrade, migrate

pytestmark = pytest.mark.infra

ROOT = Path(__file__).resolve().parents[1]


def tables(url: str) -> set[str]:
    with psycopg.connect(libpq_url(url)) as connection:
        rows = connection.execute(
            "select table_name from information_schema.tables where table_schema = 'public'"
        ).fetchall()
    return {row[0] for row in rows}


@pytest.mark.parametrize("service", SERVICES, ids=[s.name for s in SERVICES])
def test_migrations_run_up_and_down(
    service: Service, scratch_databases: Callable[[str], str]
) -> None:
    url = scratch_databases(service.name)
    directory = ROOT / "services" / service.name

    migrate(directory, url)
    assert {"outbox", "processed_events", "alembic_version"} <= tables(url)

    downgrade(directory, url, "base")
    assert tables(url) == {"alembic_version"}

    migrate(directory, url)
    assert {"outbox", "processed_events"} <= tables(url)
