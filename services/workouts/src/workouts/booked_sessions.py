"""The service's view of booked sessions, kept from `booking.sessions`.

Every event about a session names its client and trainer (a booking, or a move along its
life), so whichever arrives first creates the view and the others only move its status
towards the session's end. The result is the same in any arrival order, and applying an
event again changes nothing: a replay, or a rebuild from the topic's beginning, gives the
same view.
"""

from __future__ import annotations

from typing import Literal

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from workouts.models import BookedSession
from workouts.rules import (
    BookedSessionFacts,
    SessionMismatch,
    SessionStatus,
    furthest_status,
    session_mismatch,
)


class BookedSessions:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def session_seen(
        self, *, session_id: int, user_id: int, trainer_id: int, status: SessionStatus
    ) -> None:
        """Learn of a session, or of how far along it is. Raises `SessionMismatch` when the
        event gives a known session another client or trainer (a reused session id)."""
        await self.session.execute(
            insert(BookedSession)
            .values(session_id=session_id, user_id=user_id, trainer_id=trainer_id, status=status)
            .on_conflict_do_nothing()
        )
        known = await self._load(session_id, lock="update")
        assert known is not None  # inserted just above, or already there
        mismatch = session_mismatch(_facts(known), user_id=user_id, trainer_id=trainer_id)
        if mismatch:
            raise SessionMismatch(mismatch)
        known.status = furthest_status(SessionStatus(known.status), status)

    async def facts_about(self, session_id: int) -> BookedSessionFacts | None:
        """What is known of a session, held steady until the caller's transaction ends: a
        cancellation being applied meanwhile waits, so a decision never rests on stale facts."""
        known = await self._load(session_id, lock="share")
        return None if known is None else _facts(known)

    async def _load(
        self, session_id: int, *, lock: Literal["share", "update"]
    ) -> BookedSession | None:
        query = (
            select(BookedSession)
            .where(BookedSession.session_id == session_id)
            .with_for_update(read=lock == "share")
            .execution_options(populate_existing=True)
        )
        return (await self.session.scalars(query)).one_or_none()


def _facts(known: BookedSession) -> BookedSessionFacts:
    return BookedSessionFacts(
        session_id=known.session_id,
        user_id=known.user_id,
        trainer_id=known.trainer_id,
        status=SessionStatus(known.status),
    )
