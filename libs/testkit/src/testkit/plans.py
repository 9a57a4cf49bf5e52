"""What PostgreSQL plans for a query: the tests that pin an index ask it."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import psycopg
from sqlalchemy.dialects.postgresql.psycopg import PGDialect_psycopg
from sqlalchemy.sql import ClauseElement

from servicekit.db import libpq_url

#: Renders a statement as the services send it (SQLAlchemy's dialects are not annotated).
PSYCOPG = PGDialect_psycopg()  # type: ignore[no-untyped-call]


def plan_nodes(
    connection: psycopg.Connection[tuple[object, ...]],
    query: str,
    params: Mapping[str, Any] | None = None,
) -> list[tuple[str, str | None]]:
    """Each node of the plan of `query`: its type and the index it reads (or None)."""
    row = connection.execute(f"explain (format json) {query}", params).fetchone()
    assert row is not None
    found: list[tuple[str, str | None]] = []

    def walk(node: dict[str, Any]) -> None:
        found.append((node["Node Type"], node.get("Index Name")))
        for child in node.get("Plans", []):
            walk(child)

    document = json.loads(row[0]) if isinstance(row[0], str) else row[0]
    walk(document[0]["Plan"])  # type: ignore[index]
    return found


def as_sent(statement: ClauseElement) -> tuple[str, Mapping[str, Any]]:
    """A service's SQLAlchemy statement as psycopg receives it: its text and parameters."""
    compiled = statement.compile(dialect=PSYCOPG, compile_kwargs={"render_postcompile": True})
    return str(compiled), compiled.params


def plan_of(url: str, statement: ClauseElement) -> list[tuple[str, str | None]]:
    """The plan nodes of a service's SQLAlchemy statement, on the database `url`."""
    with psycopg.connect(libpq_url(url)) as connection:
        return plan_nodes(connection, *as_sent(statement))


def fill(url: str, insert: str, params: Mapping[str, Any], *, table: str) -> None:
    """Run `insert` on the database `url` (enough rows that PostgreSQL would rather scan
    the table than read an index it does not need), then vacuum and analyze `table`, so
    that plans count the rows and an index can answer alone."""
    with psycopg.connect(libpq_url(url), autocommit=True) as connection:
        connection.execute(insert, params)
        connection.execute(f"vacuum analyze {table}")
