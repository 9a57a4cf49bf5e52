"""What the credits API and its metrics read: balances, a client's ledger a page at a time,
and the deductions parked until their session's booking arrives.

A trainer-led workout for a session credits has not heard of waits in `pending_deductions`
until the session's booking arrives (then it is applied) or the workout is cancelled (then
it is withdrawn; see `Ledger.withdraw_parked`). Read from the database, so every replica
and every restart tells the same; ages by the database's clock.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from contracts import events
from credits.models import LedgerEntry, PendingDeduction
from credits.rules import Ledger
from credits.rules import Package as LedgerPackage
from credits.store import load_balances_and_packages
from servicekit.db import Database
from servicekit.domain import RuleBroken


async def balance_and_packages(
    db: AsyncSession, user_id: int
) -> tuple[events.Balance, list[LedgerPackage]]:
    """A client's balance, and packages in the order they pay (soonest to expire, then the
    oldest): read as the consumer reads them, in one query."""
    ledger = Ledger()
    await load_balances_and_packages(db, ledger, [user_id])
    return ledger.balance_of(user_id), ledger.packages_of(user_id)


class UnknownCursor(RuleBroken):
    """A page asked for after an entry that is not in this client's ledger."""


@dataclass(frozen=True, slots=True)
class LedgerPage:
    #: Entries with the balance's `remaining` right after each, oldest first.
    entries: list[tuple[LedgerEntry, int]]
    #: Whether entries come after the last of this page.
    more: bool


async def ledger_page(
    db: AsyncSession, user_id: int, *, after: uuid.UUID | None, limit: int
) -> LedgerPage:
    """Up to `limit` entries of a client's ledger after the entry `after` (from the first
    when None), oldest first. Each page costs its own rows, not the history before it: the
    balance before the page is one sum over the index."""
    entries = LedgerEntry.__table__.c
    mine = entries.user_id == user_id
    start, before = 0, 0
    if after is not None:
        found = await db.scalar(select(entries.seq).where(mine, entries.id == after))
        if found is None:
            raise UnknownCursor(f"no entry {after} in the ledger of client {user_id}")
        start = found
        before = (
            await db.scalar(
                select(func.coalesce(func.sum(entries.amount), 0)).where(mine, entries.seq <= start)
            )
            or 0
        )
    page = (
        select(LedgerEntry)
        .where(mine, entries.seq > start)
        .order_by(entries.seq)
        .limit(limit + 1)
        .subquery()
    )
    entry = aliased(LedgerEntry, page)
    remaining_after = before + func.sum(page.c.amount).over(order_by=page.c.seq)
    rows = (await db.execute(select(entry, remaining_after).order_by(page.c.seq))).all()
    return LedgerPage([(row[0], int(row[1])) for row in rows[:limit]], more=len(rows) > limit)


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


async def parked_page(db: AsyncSession, *, after: int | None, limit: int) -> ParkedPage:
    """Up to `limit` parked deductions after the one whose id is `after` (from the first
    when None), oldest first. `after` need not wait still: one applied or withdrawn since
    the page before was read does not break the paging."""
    query = select(PendingDeduction, _AGE).order_by(_PENDING.id).limit(limit + 1)
    if after is not None:
        query = query.where(_PENDING.id > after)
    rows = (await db.execute(query)).all()
    return ParkedPage([(row[0], float(row[1])) for row in rows[:limit]], more=len(rows) > limit)


async def parked_figures(database: Database) -> dict[str, float]:
    """How many deductions are parked and how long the oldest has waited, in one query."""
    async with database.transaction() as db:
        count, oldest = (
            await db.execute(
                select(func.count(), func.coalesce(func.max(_AGE), 0)).select_from(PendingDeduction)
            )
        ).one()
    return {PARKED_DEDUCTIONS: float(count), OLDEST_PARKED_AGE: max(float(oldest), 0.0)}
