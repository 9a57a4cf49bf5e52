"""Who may read whose usage: the contract's "Identity and access (HTTP)" for analytics.

Analytics knows whom a trainer trains from what it consumes: a booked session or a place
taken in a group session on `booking.sessions`, a workout naming a trainer on
`workouts.workout-sessions`, and a deducted or forfeited session credit on `credits.ledger`
each name the client and the trainer together. Reading follows
`servicekit.auth.require_client_records`.
"""

from __future__ import annotations

from sqlalchemy import exists, select
from sqlalchemy.ext.asyncio import AsyncSession

from analytics.models import TrainerClient


async def trains(db: AsyncSession, trainer_id: int, user_id: int) -> bool:
    named_together = exists().where(
        TrainerClient.trainer_id == trainer_id, TrainerClient.user_id == user_id
    )
    return bool(await db.scalar(select(named_together)))
