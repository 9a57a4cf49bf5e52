"""What the API reads: one session or group session, a page of those a caller may see, and
what booking knows of a client's credits."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Select, exists, false, or_, select, true, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from booking.models import (
    ClientBalance,
    GroupParticipant,
    GroupSession,
    TrainingSession,
    UnlimitedPackageGrant,
)
from booking.rules import (
    BookingRuleBroken,
    CreditStanding,
    GroupSessionNotFound,
    GroupSessionStatus,
    SessionNotFound,
    UnlimitedPackage,
)
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


#: A session of either kind, as the API reads it.
Stored = TypeVar("Stored", TrainingSession, GroupSession)


async def session_by_id(
    db: AsyncSession, session_id: int, *, for_update: bool = False
) -> TrainingSession:
    """The session (read afresh, locked when `for_update`); `SessionNotFound` when none."""
    found = await _by_id(db, TrainingSession, session_id, for_update=for_update)
    if found is None:
        raise SessionNotFound(session_id)
    return found


async def _by_id(
    db: AsyncSession, kind: type[Stored], session_id: int, *, for_update: bool
) -> Stored | None:
    """The session or group session `session_id`, read afresh (its places too), locked when
    `for_update`."""
    query = select(kind).where(kind.id == session_id).execution_options(populate_existing=True)
    if for_update:
        query = query.with_for_update(of=kind)
    return (await db.scalars(query)).one_or_none()


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
    filters = _trained_by_in(TrainingSession, trainer_id, status)
    if user_id is not None:
        filters.append(TrainingSession.user_id == user_id)
    return await _page(db, query, TrainingSession, filters, page)


async def group_session_by_id(
    db: AsyncSession, session_id: int, *, for_update: bool = False
) -> GroupSession:
    """The group session with its places (read afresh, locked when `for_update`: its places
    change only under that lock); `GroupSessionNotFound` when none."""
    found = await _by_id(db, GroupSession, session_id, for_update=for_update)
    if found is None:
        raise GroupSessionNotFound(session_id)
    return found


async def search_groups(
    db: AsyncSession,
    *,
    user_id: int | None = None,
    trainer_id: int | None = None,
    status: GroupSessionStatus | None = None,
    page: Page,
    visible_to: Caller,
) -> Sequence[GroupSession]:
    """Group sessions matching every filter given (`user_id`: those the client has or had a
    place in), the earliest session date first, among those `visible_to` may see (see
    `booking.access.may_see_group`). Whose place a caller may not see is never a filter: a
    client asking for another client's group sessions gets none."""
    query = select(GroupSession)
    if not visible_to.sees_everything:
        query = query.where(_open_to(visible_to))
    filters = _trained_by_in(GroupSession, trainer_id, status)
    if user_id is not None:
        filters += [_placed(user_id), _places_shown(visible_to, user_id)]
    return await _page(db, query, GroupSession, filters, page)


def _trained_by_in(
    kind: type[TrainingSession] | type[GroupSession], trainer_id: int | None, status: str | None
) -> list[ColumnElement[bool]]:
    """The filters of a listing by trainer and by status, those given."""
    filters: list[ColumnElement[bool]] = []
    if trainer_id is not None:
        filters.append(kind.trainer_id == trainer_id)
    if status is not None:
        filters.append(kind.status == status)
    return filters


async def _page(
    db: AsyncSession,
    visible: Select[Any],
    listed: type[TrainingSession] | type[GroupSession],
    filters: Sequence[ColumnElement[bool]],
    page: Page,
) -> Sequence[Any]:
    """The `page` of `visible` (sessions or group sessions) matching `filters`, by date then
    id; `AfterNotInList` when its `after` is none of `visible`."""
    query = visible
    if page.after is not None:
        cursor = (
            await db.execute(
                visible.with_only_columns(listed.session_date, listed.id).where(
                    listed.id == page.after
                )
            )
        ).one_or_none()
        if cursor is None:
            raise AfterNotInList(page.after)
        query = query.where(tuple_(listed.session_date, listed.id) > tuple_(*cursor))
    query = (
        query.where(*filters)
        .order_by(listed.session_date, listed.id)
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


def _placed(user_id: int) -> ColumnElement[bool]:
    """The group sessions client `user_id` has or had a place in."""
    return exists().where(
        GroupParticipant.session_id == GroupSession.id, GroupParticipant.user_id == user_id
    )


def _open_to(caller: Caller) -> ColumnElement[bool]:
    """The group sessions `caller` may see, short of everything: those it trains as a
    trainer; as a client, every one still scheduled and those it has a place in."""
    seen: list[ColumnElement[bool]] = [false()]
    if caller.trainer_id is not None:
        seen.append(GroupSession.trainer_id == caller.trainer_id)
    if caller.client_id is not None:
        seen += [GroupSession.status == GroupSessionStatus.SCHEDULED, _placed(caller.client_id)]
    return or_(*seen)


def _places_shown(caller: Caller, user_id: int) -> ColumnElement[bool]:
    """The group sessions in which `caller` may see client `user_id`'s place."""
    if caller.sees_everything or caller.is_client(user_id):
        return true()
    if caller.trainer_id is not None:
        return GroupSession.trainer_id == caller.trainer_id
    return false()
