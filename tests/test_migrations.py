"""Every service's migrations run up to head and back down to nothing on a real database."""

from __future__ import annotations

from argparse import Namespace
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest
from alembic import command
from alembic.config import Config

from contracts.services import SERVICES, Service
from servicekit.db import libpq_url

pytestmark = pytest.mark.infra

ROOT = Path(__file__).resolve().parents[1]


def alembic_config(service: Service, url: str) -> Config:
    """The service's own alembic.ini, pointed at `url` as `alembic -x url=...` would."""
    return Config(
        str(ROOT / "services" / service.name / "alembic.ini"),
        cmd_opts=Namespace(x=[f"url={url}"]),
    )


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
    config = alembic_config(service, url)

    command.upgrade(config, "head")
    assert {"outbox", "processed_events", "alembic_version"} <= tables(url)

    command.downgrade(config, "base")
    assert tables(url) == {"alembic_version"}

    command.upgrade(config, "head")
    assert {"outbox", "processed_events"} <= tables(url)
