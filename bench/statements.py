"""Where a benchmark's database time goes: the time and count of each statement an engine
runs, and the write-ahead log the server wrote meanwhile, to see which statements grow with
a history (a big index's cache misses and full-page writes show up there first)."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from ops.databases import DatabaseAdmin

#: A statement is named by its first words: enough to tell the service's few statements apart.
NAME_WORDS = 5
NAME_LENGTH = 60


@dataclass
class StatementProfile:
    seconds: Counter[str] = field(default_factory=Counter)
    calls: Counter[str] = field(default_factory=Counter)
    #: pg_stat_wal's records, full-page images and bytes written while measured: the whole
    #: server's, so measure with nothing else writing (the history benchmark runs alone).
    wal: dict[str, int] = field(default_factory=dict)

    def watch(self, engine: AsyncEngine) -> None:
        def before(connection: Connection, *_: Any) -> None:
            connection.info["statement_began"] = time.perf_counter()

        def after(connection: Connection, _cursor: Any, statement: str, *_: Any) -> None:
            name = " ".join(statement.split()[:NAME_WORDS])[:NAME_LENGTH]
            self.seconds[name] += time.perf_counter() - connection.info.pop("statement_began")
            self.calls[name] += 1

        event.listen(engine.sync_engine, "before_cursor_execute", before)
        event.listen(engine.sync_engine, "after_cursor_execute", after)

    def wal_before(self, admin: DatabaseAdmin) -> None:
        self.wal = {name: -value for name, value in _wal(admin).items()}

    def wal_after(self, admin: DatabaseAdmin) -> None:
        for name, value in _wal(admin).items():
            self.wal[name] += value

    def report(self, top: int = 6) -> list[str]:
        lines = [
            f"    statements: {sum(self.seconds.values()):,.2f} s in all; write-ahead log: "
            f"{self.wal['records']:,} records, {self.wal['fpi']:,} full-page images, "
            f"{self.wal['bytes'] / 2**20:,.0f} MiB"
        ]
        for name, seconds in self.seconds.most_common(top):
            lines.append(f"    {seconds * 1000:7,.0f} ms {self.calls[name]:5,}x  {name}")
        return lines


def _wal(admin: DatabaseAdmin) -> dict[str, int]:
    with admin.connect() as connection:
        row = connection.execute(
            "select wal_records, wal_fpi, wal_bytes::bigint from pg_stat_wal"
        ).fetchone()
    assert row is not None
    # An unparameterized psycopg connection types its values as `object`.
    records, fpi, written = (int(value) for value in row)  # type: ignore[call-overload]
    return {"records": records, "fpi": fpi, "bytes": written}
