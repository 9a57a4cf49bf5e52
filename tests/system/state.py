"""A service's business state, read straight from its database, to compare before and after a
replay or a rebuild.

Every table counts except the plumbing: `processed_events` (which events this database has
applied: a rebuild starts it afresh, and a replay adds nothing to it) and `outbox` (events
waiting for the relay). Columns are compared whole, except those that record when, or in
which order, *this database* inserted a row, which a new database cannot know:
- credits `ledger_entries.recorded_at` (now() at insertion) and `seq` (the insertion order
  for "oldest first" listings, from a sequence);
- credits `pending_deductions.id` (an identity) and `received_at` (now() at insertion).
Everything else, the moments carried by events included, must come back exactly.
"""

from __future__ import annotations

from collections.abc import Mapping

import psycopg
from psycopg import sql

from servicekit.db import libpq_url

NOT_BUSINESS_STATE = frozenset({"processed_events", "outbox"})
INSERTION_COLUMNS: Mapping[tuple[str, str], frozenset[str]] = {
    ("credits", "ledger_entries"): frozenset({"recorded_at", "seq"}),
    ("credits", "pending_deductions"): frozenset({"id", "received_at"}),
}

Rows = list[tuple[object, ...]]


def business_state(service: str, database_url: str) -> dict[str, Rows]:
    """Each table's rows (compared columns only), in a stable order."""
    with psycopg.connect(libpq_url(database_url)) as connection:
        tables = [
            str(row[0])
            for row in connection.execute(
                "select table_name from information_schema.tables"
                " where table_schema = 'public' and table_type = 'BASE TABLE'"
                " order by table_name"
            )
        ]
        state: dict[str, Rows] = {}
        for table in tables:
            if table in NOT_BUSINESS_STATE:
                continue
            ignored = INSERTION_COLUMNS.get((service, table), frozenset())
            columns = [
                str(row[0])
                for row in connection.execute(
                    "select column_name from information_schema.columns"
                    " where table_schema = 'public' and table_name = %s order by ordinal_position",
                    (table,),
                )
                if row[0] not in ignored
            ]
            query = sql.SQL("select {} from {}").format(
                sql.SQL(", ").join(map(sql.Identifier, columns)), sql.Identifier(table)
            )
            state[table] = sorted(connection.execute(query).fetchall(), key=repr)
    return state


def differences(before: Mapping[str, Rows], after: Mapping[str, Rows], limit: int = 5) -> str:
    """What changed, table by table, for an assertion message."""
    lines = []
    for table in sorted(set(before) | set(after)):
        rows_before, rows_after = before.get(table, []), after.get(table, [])
        if rows_before == rows_after:
            continue
        old, new = set(rows_before), set(rows_after)
        lines.append(f"{table}: {len(rows_before)} rows before, {len(rows_after)} after")
        lines += [f"  - {row}" for row in sorted(old - new, key=repr)[:limit]]
        lines += [f"  + {row}" for row in sorted(new - old, key=repr)[:limit]]
    return "\n".join(lines)
