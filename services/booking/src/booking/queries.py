"""What the API reads: one session, a page of those a caller may see, and what booking knows
of a client's credits."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import ColumnElement, false, or_, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from booking.models import ClientBalance, TrainingSession, UnlimitedPackageGrant
from booking.rules import BookingRuleBroken, CreditStanding, SessionNotFound, UnlimitedPackage
from contracts.sessions import SessionStatus
from servicekit.auth import Caller


class AfterNotInList(BookingRuleBroken):
    """A page asked for after a session the caller may not list."""

    def __init__(self, after: int) -> None:
        super().__init__(f"after: no session {after} in this list")


@dataclass(frozen=True, slots=True)
class Page:
    """Which part of a listing: at most `limit` sessions, those after the session `after`
    when given, the first `offset` of them skipped."""

    limit: int
    offset: int = 0
    after: int | None = None


async def session_by_id(
    db: AsyncSession, session_id: int, *, for_update: bool = False
) -> TrainingSession:
    """The session (read afresh, locked when `for_update`); `SessionNotFound` when none."""
    query = (
        select(TrainingSession)
        .where(TrainingSession.id == session_id)
        .execution_options(populate_existing=True)
    )
    if for_update:
        query = query.with_for_update(of=TrainingSession)
    found = (await db.scalars(query)).one_or_none()
    if found is None:
        raise SessionNotFound(session_id)
    return found


async def credit_standing(db: AsyncSession, user_id: int) -> CreditStanding:
    """The client's available credits and unlimited packages, as the ledger told booking."""
    available = await db.scalar(
        select(ClientBalance.available).where(ClientBalance.user_id == user_id)
    )
    ends = await db.scalars(
        select(UnlimitedPackageGrant.valid_until).where(UnlimitedPackageGrant.user_id == user_id)
    )
    return CreditStanding(
        user_id,
        available=available or 0,
        unlimited=tuple(UnlimitedPackage(user_id, end) for end in ends),
    )


async def search(
    db: AsyncSession,
    *,
    user_id: int | None = None,
    trainer_id: int | None = None,
    status: SessionStatus | None = None,
    page: Page,
    visible_to: Caller | None = None,
) -> Sequence[TrainingSession]:
    """Sessions matching every filter given, the earliest session date first: the `page`
    asked for (`AfterNotInList` when its `after` is not one the caller may see), and only
    those `visible_to` may see (its own as a client, those it trains as a trainer)."""
    query = select(TrainingSession)
    if visible_to is not None and not visible_to.sees_everything:
        query = query.where(_involving(visible_to))
    if page.after is not None:
        cursor = (
            await db.execute(
                query.with_only_columns(TrainingSession.session_date, TrainingSession.id).where(
                    TrainingSession.id == page.after
                )
            )
        ).one_or_none()
        if cursor is None:
            raise AfterNotInList(page.after)
        query = query.where(
            tuple_(TrainingSession.session_date, TrainingSession.id) > tuple_(*cursor)
        )
    if user_id is not None:
        query = query.where(TrainingSession.user_id == user_id)
    if trainer_id is not None:
        query = query.where(TrainingSession.trainer_id == trainer_id)
    if status is not None:
        query = query.where(TrainingSession.status == status)
    query = (
        query.order_by(TrainingSession.session_date, TrainingSession.id)
        .limit(page.limit)
        .offset(page.offset)
    )
    return (await db.scalars(query)).all()


def _involving(caller: Caller) -> ColumnElement[bool]:
    """The sessions of `caller` as a client, and those it trains as a trainer."""
    parties: list[ColumnElement[bool]] = [false()]
    if caller.client_id is not None:
        parties.append(TrainingSession.user_id == caller.client_id)
    if caller.trainer_id is not None:
        parties.append(TrainingSession.trainer_id == caller.trainer_id)
    return or_(*parties)
