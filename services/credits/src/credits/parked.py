"""Parked deductions as staff and operators see them: each one waiting, and how many wait.

A trainer-led workout for a session credits has not heard of waits in `pending_deductions`
until the session's booking arrives (then it is applied) or the workout is cancelled (then
it is withdrawn; see `Ledger.withdraw_parked`). Read from the database, so every replica
and every restart tells the same; ages by the database's clock.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from credits.models import PendingDeduction
from servicekit.db import Database

_PENDING = PendingDeduction.__table__.c
#: Seconds since a row was parked.
_AGE = func.extract("epoch", func.now() - _PENDING.received_at)

#: The gauges credits serves on `/metrics`, measured by `parked_figures`.
PARKED_DEDUCTIONS = "credits_parked_deductions"
OLDEST_PARKED_AGE = "credits_parked_deductions_oldest_age_seconds"
PARKED_GAUGES = {
    PARKED_DEDUCTIONS: "Deductions waiting for their session's booking (parked).",
    OLDEST_PARKED_AGE: "How long the oldest parked deduction has waited (0 when none waits).",
}


@dataclass(frozen=True, slots=True)
class ParkedPage:
    #: Parked deductions with their age in seconds, oldest first.
    deductions: list[tuple[PendingDeduction, float]]
    #: Whether more come after the last of this page.
    more: bool


async def parked_page(session: AsyncSession, *, after: int | None, limit: int) -> ParkedPage:
    """Up to `limit` parked deductions after the one whose id is `after` (from the first
    when None), oldest first. `after` need not wait still: one applied or withdrawn since
    the page before was read does not break the paging."""
    query = select(PendingDeduction, _AGE).order_by(_PENDING.id).limit(limit + 1)
    if after is not None:
        query = query.where(_PENDING.id > after)
    rows = (await session.execute(query)).all()
    return ParkedPage([(row[0], float(row[1])) for row in rows[:limit]], more=len(rows) > limit)


async def parked_figures(database: Database) -> dict[str, float]:
    """How many deductions are parked and how long the oldest has waited, in one query."""
    async with database.sessions() as session:
        count, oldest = (
            await session.execute(
                select(func.count(), func.coalesce(func.max(_AGE), 0)).select_from(PendingDeduction)
            )
        ).one()
    return {PARKED_DEDUCTIONS: float(count), OLDEST_PARKED_AGE: max(float(oldest), 0.0)}
