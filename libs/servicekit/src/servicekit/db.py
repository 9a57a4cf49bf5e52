"""Database engine and sessions (SQLAlchemy 2, asyncio, psycopg 3)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import any_, literal, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)


class Database:
    """One service's database: a pooled engine and the sessions made from it."""

    def __init__(self, url: str, *, pool_size: int = 10) -> None:
        self.url = url
        self.engine: AsyncEngine = create_async_engine(
            url,
            pool_size=pool_size,
            max_overflow=pool_size,
            pool_pre_ping=True,
            # Sessions commit explicitly; objects stay readable after commit for responses.
        )
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A session inside one transaction: committed on success, rolled back on error."""
        async with self.sessions() as session, session.begin():
            yield session

    async def ping(self) -> None:
        """Raise unless the database answers a query."""
        async with self.engine.connect() as connection:
            await connection.execute(text("select 1"))

    async def dispose(self) -> None:
        await self.engine.dispose()


def libpq_url(sqlalchemy_url: str) -> str:
    """The same database as a plain libpq URL, for psycopg connections outside SQLAlchemy."""
    return sqlalchemy_url.replace("postgresql+psycopg://", "postgresql://", 1)


def any_of(values: Sequence[Any], item_type: Any) -> Any:
    """`column == any_of(values, BIGINT)` renders `= ANY(array)`: one parameter, so the
    statement's text is the same for every number of values and PostgreSQL and the driver
    parse and plan it once (an IN list differs with each size)."""
    return any_(literal(list(values), ARRAY(item_type)))
