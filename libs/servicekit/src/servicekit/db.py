"""Database engine and sessions (SQLAlchemy 2, asyncio, psycopg 3)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any, cast

from psycopg.types.array import ListBinaryDumper
from sqlalchemy import Table, TextClause, any_, event, literal, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql.base import PGDialect
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase

# Services and tests take libpq's form of a URL from here, beside the database; it is
# defined apart so that `ops` reads it without loading SQLAlchemy.
from servicekit.urls import libpq_url as libpq_url

#: How long a caller waits for a pooled connection when all are in use, and for a new one
#: to be opened, in seconds: past that it fails, and the API answers 503 at once
#: (`servicekit.http.answer_database_unavailable`) rather than outwait its caller.
POOL_TIMEOUT = 5.0
CONNECT_TIMEOUT = 5


class Database:
    """One service's database: a pooled engine and the sessions made from it."""

    def __init__(
        self,
        url: str,
        *,
        pool_size: int = 10,
        pool_timeout: float = POOL_TIMEOUT,
        connect_timeout: int = CONNECT_TIMEOUT,
    ) -> None:
        self.url = url
        self.engine: AsyncEngine = create_async_engine(
            url,
            pool_size=pool_size,
            max_overflow=pool_size,
            pool_timeout=pool_timeout,
            pool_pre_ping=True,
            connect_args={"connect_timeout": connect_timeout},
            # Sessions commit explicitly; objects stay readable after commit for responses.
        )
        self._sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        event.listen(self.engine.sync_engine, "connect", _send_lists_as_binary_arrays)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A database session inside one transaction: committed on success, rolled back on
        error. Reads too end with this commit: psycopg forgets every statement a connection
        has prepared when it rolls back, and the pool's connections serve writes as well."""
        async with self._sessions() as db, db.begin():
            yield db

    async def ping(self) -> None:
        """Raise unless the database answers a query (committed, as `transaction` says why)."""
        async with self.engine.begin() as connection:
            await connection.execute(text("select 1"))

    async def dispose(self) -> None:
        await self.engine.dispose()


def _send_lists_as_binary_arrays(connection: Any, _record: Any) -> None:
    """Python lists (`any_of`, `insert_rows`: thousands of values per batch) travel as binary
    arrays. In text form psycopg quotes and escapes every element in Python, bytea as hex: 10
    to 80 times the CPU. PostgreSQL casts a binary array as it would a text one."""
    connection.driver_connection.adapters.register_dumper(list, ListBinaryDumper)


def any_of(values: Sequence[Any], item_type: Any) -> Any:
    """`column == any_of(values, BIGINT)` renders `= ANY(array)`: one parameter, so the
    statement's text is the same for every number of values and PostgreSQL and the driver
    parse and plan it once (an IN list differs with each size)."""
    return any_(literal(list(values), ARRAY(item_type)))


#: Renders column types for `insert_rows` (SQLAlchemy's dialect classes are not annotated).
_POSTGRESQL = PGDialect()  # type: ignore[no-untyped-call]


def insert_rows(
    into: Table | type[DeclarativeBase],
    columns: Sequence[str],
    *,
    then: str = "",
    prefix: str = "",
) -> TextClause:
    """`insert into table (columns)` from one array parameter per column (named after it,
    behind `prefix`: several of these can then share one statement as CTEs), `then`
    appended (an `on conflict` clause): many rows in one statement. Like `any_of`,
    its text is the same whatever the number of rows, and the driver sends one array per
    column rather than one message per row (executemany). Rows are inserted in their order,
    so identity and sequence defaults number them as given."""
    table = into if isinstance(into, Table) else cast(Table, into.__table__)
    arrays = ", ".join(
        f"cast(:{prefix}{name} as {table.c[name].type.compile(dialect=_POSTGRESQL)}[])"
        for name in columns
    )
    # Names come from the table's own columns (an unknown one raises above), never from input.
    names = ", ".join(table.c[name].name for name in columns)
    return text(
        f"insert into {table.name} ({names}) select {names}"  # noqa: S608
        f" from unnest({arrays}) with ordinality as given({names}, given_order)"
        f" order by given_order {then}"
    )


def columns_of(
    rows: Sequence[Mapping[str, Any]], columns: Sequence[str], *, prefix: str = ""
) -> dict[str, list[Any]]:
    """Rows turned into the column arrays `insert_rows` takes."""
    return {prefix + name: [row[name] for row in rows] for name in columns}
