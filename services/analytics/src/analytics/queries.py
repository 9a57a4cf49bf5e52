"""What the analytics API reads: a client's current usage."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from analytics.models import UserUsage
from analytics.rules import ClientUsage, SessionUsage


async def usage_of(db: AsyncSession, user_id: int) -> SessionUsage:
    """Current usage; a client the service has never heard of has none of anything."""
    row = await db.get(UserUsage, user_id)
    if row is None:
        return SessionUsage()
    return ClientUsage(
        row.user_id,
        solo_count=row.solo_count,
        trainer_led_count=row.trainer_led_count,
        credits_total=row.credits_total,
        credits_used=row.credits_used,
        credits_held=row.credits_held,
        credits_expired=row.credits_expired,
    ).usage
