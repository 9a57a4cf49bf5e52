"""What the API reads: a workout the caller may read (locked when it is about to change),
and a client's workouts, page by page, among those the caller may read (see `access`)."""

from __future__ import annotations

import uuid

from sqlalchemy import ColumnElement, exists, false, or_, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.events import SessionType, WorkoutStatus
from servicekit.auth import Caller
from servicekit.domain import RuleBroken
from workouts.access import WorkoutNotFound, may_read
from workouts.models import BookedSession, GroupSession, WorkoutRow


class NotInThisList(RuleBroken):
    """A page asked for after a workout that is not one of the list's."""

    def __init__(self, after: uuid.UUID) -> None:
        super().__init__(f"after: no workout {after} in this list")


async def trainer_of(
    db: AsyncSession, session_type: SessionType, session_id: int | None
) -> int | None:
    """The trainer of a workout's session (a group workout's group session, any other's
    booked session), None when the session is not known here."""
    if session_id is None:
        return None
    session = GroupSession if session_type is SessionType.GROUP else BookedSession
    trainer: int | None = await db.scalar(
        select(session.trainer_id).where(session.session_id == session_id)
    )
    return trainer


async def trains(db: AsyncSession, *, trainer_id: int, user_id: int) -> bool:
    """Whether the trainer trains the client: a session booked with them is known here."""
    found = await db.scalar(
        select(
            exists().where(BookedSession.trainer_id == trainer_id, BookedSession.user_id == user_id)
        )
    )
    return bool(found)


async def readable_workout(
    db: AsyncSession, workout_id: uuid.UUID, by: Caller, *, for_update: bool = False
) -> tuple[WorkoutRow, int | None]:
    """The workout, if `by` may read it (else `WorkoutNotFound`), and the trainer of its
    booked session when that had to be looked up to decide."""
    row = await db.get(WorkoutRow, workout_id, with_for_update=for_update)
    if row is None:
        raise WorkoutNotFound(workout_id)
    if by.sees_everything or by.is_user(row.user_id):
        return row, None
    # A trainer-assisted workout is its trainer's, who gave the plan; any other its session's.
    session_type = SessionType(row.session_type)
    session_trainer = (
        row.trainer_id
        if session_type is SessionType.TRAINER_ASSISTED
        else await trainer_of(db, session_type, row.session_id)
    )
    if not may_read(by, owner=row.user_id, session_trainer=session_trainer):
        raise WorkoutNotFound(workout_id)
    return row, session_trainer


async def workouts_of(
    db: AsyncSession,
    user_id: int,
    *,
    limit: int,
    offset: int = 0,
    after: uuid.UUID | None = None,
    status: WorkoutStatus | None = None,
    session_type: SessionType | None = None,
    visible_to: Caller | None = None,
) -> list[WorkoutRow]:
    """A client's workouts, newest first, those after the workout `after` when given
    (`NotInThisList` when it is not one of theirs the caller may read); only those
    `visible_to` may read."""
    query = select(WorkoutRow).where(WorkoutRow.user_id == user_id)
    if visible_to is not None and not visible_to.sees_everything:
        query = query.where(_readable_by(visible_to))
    if after is not None:
        cursor = (
            await db.execute(
                query.with_only_columns(
                    WorkoutRow.date, WorkoutRow.created_at, WorkoutRow.id
                ).where(WorkoutRow.id == after)
            )
        ).one_or_none()
        if cursor is None:
            raise NotInThisList(after)
        query = query.where(
            tuple_(WorkoutRow.date, WorkoutRow.created_at, WorkoutRow.id) < tuple_(*cursor)
        )
    if status is not None:
        query = query.where(WorkoutRow.status == status)
    if session_type is not None:
        query = query.where(WorkoutRow.session_type == session_type)
    query = (
        query.order_by(WorkoutRow.date.desc(), WorkoutRow.created_at.desc(), WorkoutRow.id.desc())
        .limit(limit)
        .offset(offset)
    )
    return list(await db.scalars(query))


def _readable_by(caller: Caller) -> ColumnElement[bool]:
    """The caller's own workouts, and those of the sessions and group sessions it trains
    (see `access`)."""
    readable: list[ColumnElement[bool]] = [false()]
    if caller.user_id is not None:
        readable.append(WorkoutRow.user_id == caller.user_id)
    if caller.trainer_id is not None:
        readable.append(
            (WorkoutRow.session_type == SessionType.TRAINER_LED)
            & exists().where(
                BookedSession.session_id == WorkoutRow.session_id,
                BookedSession.trainer_id == caller.trainer_id,
            )
        )
        readable.append(
            (WorkoutRow.session_type == SessionType.GROUP)
            & exists().where(
                GroupSession.session_id == WorkoutRow.session_id,
                GroupSession.trainer_id == caller.trainer_id,
            )
        )
        readable.append(
            (WorkoutRow.session_type == SessionType.TRAINER_ASSISTED)
            & (WorkoutRow.trainer_id == caller.trainer_id)
        )
    return or_(*readable)
