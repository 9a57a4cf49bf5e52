"""How the services use their database: every unit of work ends in a commit, reads and the
readiness check included, so the statements psycopg prepares on a pooled connection outlive
them (it forgets them all at a rollback)."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from servicekit.db import Database

pytestmark = pytest.mark.infra

#: psycopg prepares a statement at its sixth execution on a connection (its default).
EXECUTIONS_BEFORE_PREPARED = 5

QUERY = text("select count(*) from pg_class where relkind = :kind")


async def test_a_prepared_statement_outlives_the_reads_and_the_readiness_checks_after_it(
    database_url: str,
) -> None:
    # One connection at a time, used in turn: each step below runs on the same one.
    database = Database(database_url, pool_size=1)
    try:
        for _ in range(EXECUTIONS_BEFORE_PREPARED + 1):
            async with database.transaction() as db:
                await db.execute(QUERY, {"kind": "r"})
        async with database.transaction() as db:
            await db.execute(text("select 1"))
        await database.ping()
        async with database.transaction() as db:
            prepared = list(await db.scalars(text("select statement from pg_prepared_statements")))
            backends = await db.scalar(
                text("select count(*) from pg_stat_activity where datname = current_database()")
            )
    finally:
        await database.dispose()

    assert backends == 1
    assert [statement for statement in prepared if "pg_class" in statement] == [
        "select count(*) from pg_class where relkind = $1"
    ]
