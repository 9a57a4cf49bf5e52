"""Each service's database on a real server: only its own roles connect to it, and the role
the service runs as can read and write rows and nothing more."""

from __future__ import annotations

from collections.abc import Callable

import psycopg
import pytest

from contracts.services import BOOKING, CREDITS
from ops.databases import database_name
from servicekit.db import libpq_url
from testkit.servers import Servers, on_database

pytestmark = pytest.mark.infra


@pytest.mark.parametrize("role", ["runtime", "owner"])
def test_another_services_roles_cannot_connect_to_a_services_database(
    servers: Servers, service_database: Callable[[str], str], role: str
) -> None:
    credits_database = database_name(service_database("credits"))
    booking = servers.database_url(BOOKING) if role == "runtime" else servers.owner_url(BOOKING)

    with pytest.raises(psycopg.OperationalError, match="permission denied for database"):
        psycopg.connect(libpq_url(on_database(booking, credits_database)), connect_timeout=5)


def test_the_services_own_runtime_role_connects_and_owns_nothing(
    service_database: Callable[[str], str],
) -> None:
    url = service_database("credits")

    with psycopg.connect(libpq_url(url), connect_timeout=5) as connection:
        row = connection.execute(
            "select current_user, rolcreatedb, rolcreaterole, rolsuper,"
            " (select count(*) from pg_tables where tableowner = current_user)"
            " from pg_roles where rolname = current_user"
        ).fetchone()

    assert row == (CREDITS.runtime_role, False, False, False, 0)


def test_the_credits_runtime_role_may_only_insert_and_read_ledger_entries(
    service_database: Callable[[str], str],
) -> None:
    url = service_database("credits")
    with psycopg.connect(libpq_url(url), autocommit=True) as connection:
        privileges = {
            privilege
            for privilege in ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE")
            if connection.execute(
                "select has_table_privilege('ledger_entries', %s)", (privilege,)
            ).fetchone()
            == (True,)
        }
        for statement in ("create table mine (id int)", "update ledger_entries set amount = 1"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                connection.execute(statement)

    assert privileges == {"SELECT", "INSERT"}
