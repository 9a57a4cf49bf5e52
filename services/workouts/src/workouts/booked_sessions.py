"""The service's view of booked sessions, kept from `booking.sessions`.

Every event about a session names its client and trainer (a booking, or a move along its
life), so whichever arrives first creates the view and the others only move its status
towards the session's end. The result is the same in any arrival order, and applying an
event again changes nothing: a replay, or a rebuild from the topic's beginning, gives the
same view.

Events are applied a batch at a time (`SessionsSeen`): the sessions a batch names are
created or locked with two statements, the events decide in memory in their order, and the
statuses they moved are written with one more.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import BIGINT
from sqlalchemy.ext.asyncio import AsyncSession

from servicekit.db import any_of, columns_of, insert_rows
from workouts.models import BookedSession
from workouts.rules import (
    BookedSessionFacts,
    SessionMismatch,
    SessionStatus,
    furthest_status,
    session_mismatch,
)

_COLUMNS = ("session_id", "user_id", "trainer_id", "status")
_SESSIONS = BookedSession.__table__.c
#: Sessions not known yet, as the first event about each describes them; the ones it
#: creates come back. A session being created by another transaction is waited for, then
#: left as that one made it, so every decision rests on the client and trainer stored.
_CREATE_UNKNOWN = insert_rows(
    BookedSession, _COLUMNS, then="on conflict do nothing returning session_id"
)
_SET_STATUSES = insert_rows(
    BookedSession, _COLUMNS, then="on conflict (session_id) do update set status = excluded.status"
)


@dataclass
class SessionsSeen:
    """The sessions a batch of events names, created or locked before its first event is
    applied (row locks, taken in session id order); `seen` decides in memory, and `write`
    stores the statuses that moved. Apply only what it was loaded for."""

    session: AsyncSession
    _known: dict[int, BookedSessionFacts] = field(default_factory=dict)
    _moved: set[int] = field(default_factory=set)

    @classmethod
    async def load(
        cls, session: AsyncSession, reports: Iterable[BookedSessionFacts]
    ) -> SessionsSeen:
        """`reports`: what each event of the batch tells of its session, in their order."""
        seen = cls(session)
        first: dict[int, BookedSessionFacts] = {}
        for reported in reports:
            first.setdefault(reported.session_id, reported)
        if not first:
            return seen
        ordered = [first[session_id] for session_id in sorted(first)]
        created = set(await session.scalars(_CREATE_UNKNOWN, _columns(ordered)))
        seen._known = {r.session_id: r for r in ordered if r.session_id in created}
        known_before = [r.session_id for r in ordered if r.session_id not in created]
        if known_before:
            for row in await session.execute(
                select(*_SESSIONS)
                .where(_SESSIONS.session_id == any_of(known_before, BIGINT))
                .order_by(_SESSIONS.session_id)
                .with_for_update()
            ):
                seen._known[row.session_id] = BookedSessionFacts(
                    session_id=row.session_id,
                    user_id=row.user_id,
                    trainer_id=row.trainer_id,
                    status=SessionStatus(row.status),
                )
        return seen

    def seen(self, reported: BookedSessionFacts) -> None:
        """Learn of a session, or of how far along it is. Raises `SessionMismatch` when the
        event gives a known session another client or trainer (a reused session id)."""
        known = self._known[reported.session_id]
        mismatch = session_mismatch(known, user_id=reported.user_id, trainer_id=reported.trainer_id)
        if mismatch:
            raise SessionMismatch(mismatch)
        status = furthest_status(known.status, reported.status)
        if status is not known.status:
            self._known[known.session_id] = replace(known, status=status)
            self._moved.add(known.session_id)

    async def write(self) -> None:
        """Store the statuses moved since loading, with one statement."""
        if self._moved:
            moved = [self._known[session_id] for session_id in sorted(self._moved)]
            await self.session.execute(_SET_STATUSES, _columns(moved))
            self._moved.clear()


class BookedSessions:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def trainer_of(self, session_id: int | None) -> int | None:
        """The trainer of a booked session, None when the session is not known here."""
        if session_id is None:
            return None
        trainer: int | None = await self.session.scalar(
            select(_SESSIONS.trainer_id).where(_SESSIONS.session_id == session_id)
        )
        return trainer

    async def facts_about(self, session_id: int) -> BookedSessionFacts | None:
        """What is known of a session, held steady until the caller's transaction ends: a
        cancellation being applied meanwhile waits, so a decision never rests on stale facts."""
        known = (
            await self.session.scalars(
                select(BookedSession)
                .where(BookedSession.session_id == session_id)
                .with_for_update(read=True)
                .execution_options(populate_existing=True)
            )
        ).one_or_none()
        if known is None:
            return None
        return BookedSessionFacts(
            session_id=known.session_id,
            user_id=known.user_id,
            trainer_id=known.trainer_id,
            status=SessionStatus(known.status),
        )


def _columns(sessions: Iterable[BookedSessionFacts]) -> dict[str, list[Any]]:
    return columns_of(
        [
            {"session_id": s.session_id, "user_id": s.user_id, "trainer_id": s.trainer_id,
             "status": str(s.status)}
            for s in sessions
        ],
        _COLUMNS,
    )  # fmt: skip
