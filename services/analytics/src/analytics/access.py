"""Who may read whose usage: the contract's "Identity and access (HTTP)" for analytics.

Analytics knows whom a trainer trains from what it consumes: a trainer-led workout on
`workouts.workout-sessions` and a deducted session credit on `credits.ledger` each name the
client and the trainer together. A client booked with a trainer who has neither logged a
trainer-led workout nor had a session's credit deducted is not known here yet. Reading
follows `servicekit.auth.require_client_records`.
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
