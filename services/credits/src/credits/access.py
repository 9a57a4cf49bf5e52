"""Who may read whose credits: the contract's "Identity and access (HTTP)" for credits.

Credits knows whom a trainer trains from `booking.sessions`, through its own view of the
booked sessions: a client the trainer has at least one session booked with, one-to-one or
a place in a group. Granting
credits and reading the parked deductions are for staff alone; reading a balance and its
ledger follows `servicekit.auth.require_client_records`.
"""

from __future__ import annotations

from sqlalchemy import exists, select
from sqlalchemy.ext.asyncio import AsyncSession

from credits.models import GroupPlace, KnownSession

GRANT_RULE = "only staff grant credits"
PARKED_RULE = "only staff read the parked deductions"
WAIVER_RULE = "only staff waive a forfeited credit"


async def trains(db: AsyncSession, trainer_id: int, user_id: int) -> bool:
    """Whether the trainer has a session booked with the client, as far as credits knows."""
    booked = exists().where(KnownSession.trainer_id == trainer_id, KnownSession.user_id == user_id)
    placed = exists().where(GroupPlace.trainer_id == trainer_id, GroupPlace.user_id == user_id)
    return bool(await db.scalar(select(booked | placed)))
