"""The group sessions' HTTP API: schedule a class, take and give up places in it, complete,
cancel or move it.

Who sees what (`booking.access`): staff, services and the session's trainer see a group
session whole. A client sees every group session still scheduled (the timetable they join
from) and any they have or had a place in, but `participants` lists only their own place:
other clients' ids are private (`placesTaken` still counts every place). Any other group
session reads as never scheduled (404), for them and for every other caller.

Taking a place is idempotent: 201 when it is taken, 200 when the client held it already.
Giving it up again changes nothing (200); a client who gave it up may not take it again
(409). Completing names who did not show (`noShows`); everyone else still joined attended.
A `noShows` naming a client who holds no place is a 409: the body is well formed, the
session's places refuse it. Completing or cancelling again changes nothing (200); any
other change of a session that is over is a 409.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Self

from fastapi import APIRouter, Path, Query, Response, status
from pydantic import Field, Strict, model_validator

from booking.access import may_see_group, places_shown
from booking.api import (
    BAD_LISTING,
    AllowWithoutCredit,
    Commands,
    Duration,
    EntityId,
    Location,
    Notes,
    PageAsked,
    Reason,
    SessionDate,
    TrainerIdFilter,
    UserIdFilter,
    as_stored,
    log_without_credit,
)
from booking.models import GroupParticipant
from booking.models import GroupSession as StoredGroupSession
from booking.queries import group_session_by_id, search_groups
from booking.rules import DEFAULT_DURATION, GroupSessionNotFound, GroupSessionStatus, PlaceStatus
from contracts.events import MAX_GROUP_SIZE, MAX_ID, ContractModel
from servicekit.auth import Caller, CallerDep
from servicekit.runtime import Runtime

router = APIRouter(prefix="/api/group-sessions", tags=["group sessions"])

Capacity = Annotated[
    int, Strict(), Field(ge=1, le=MAX_GROUP_SIZE, description="How many clients may take a place")
]


class GroupSessionRequest(ContractModel):
    trainer_id: EntityId
    session_date: SessionDate
    capacity: Capacity
    duration: Duration = None
    location: Location | None = None
    notes: Notes | None = None


class PlaceRequest(ContractModel):
    allow_without_credit: AllowWithoutCredit = False


class GroupSessionChange(ContractModel):
    """Either a new status, `completed` (with the clients who did not show, `noShows`) or
    `cancelled` (with an optional reason), or a new date for a session not over yet."""

    status: GroupSessionStatus | None = None
    no_shows: Annotated[list[EntityId], Field(max_length=MAX_GROUP_SIZE)] | None = None
    reason: Reason | None = None
    session_date: SessionDate | None = None

    @model_validator(mode="after")
    def _one_change_at_a_time(self) -> Self:
        if (self.status is None) == (self.session_date is None):
            raise ValueError("give either status or sessionDate")
        if self.status is GroupSessionStatus.SCHEDULED:
            raise ValueError("status is completed or cancelled: a session is scheduled once")
        if self.no_shows is not None and self.status is not GroupSessionStatus.COMPLETED:
            raise ValueError("noShows goes with status completed")
        if self.reason is not None and self.status is not GroupSessionStatus.CANCELLED:
            raise ValueError("reason goes with status cancelled")
        if self.no_shows is not None and len(set(self.no_shows)) != len(self.no_shows):
            raise ValueError("noShows names a client twice")
        return self


class Participant(ContractModel):
    user_id: int
    status: PlaceStatus
    #: Null for a place first named by the session's completion.
    joined_at: datetime | None
    left_at: datetime | None

    @classmethod
    def of(cls, place: GroupParticipant) -> Participant:
        return cls(
            user_id=place.user_id,
            status=place.current_status,
            joined_at=_utc(place.joined_at),
            left_at=_utc(place.left_at),
        )


class GroupSession(ContractModel):
    id: int
    trainer_id: int
    session_date: datetime
    duration: int
    capacity: int
    status: GroupSessionStatus
    location: str | None
    notes: str | None
    status_reason: str | None
    created_at: datetime
    updated_at: datetime
    #: Places held (joined, attended or missed): every client's, whoever asks.
    places_taken: int
    #: The places the caller may see: all of them, or a client's own.
    participants: list[Participant]

    @classmethod
    def of(cls, group: StoredGroupSession, *, shown_to: Caller) -> GroupSession:
        return cls(
            **as_stored(group),
            capacity=group.capacity,
            places_taken=group.places_taken,
            participants=[Participant.of(p) for p in places_shown(shown_to, group)],
        )


def _utc(moment: datetime | None) -> datetime | None:
    return None if moment is None else moment.astimezone(UTC)


GroupSessionId = Annotated[int, Path(gt=0, le=MAX_ID, description="The group session's id")]
ClientId = Annotated[int, Path(gt=0, le=MAX_ID, description="The client's user id")]
#: A group session the caller may not see answers as one never scheduled.
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"description": "No such group session, or one the caller may not see"}
}
CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {"description": "The session's status or places do not allow it"}
}


@router.post("", status_code=status.HTTP_201_CREATED, response_model=GroupSession)
async def schedule_group_session(
    scheduling: GroupSessionRequest, caller: CallerDep, runtime: Runtime, commands: Commands
) -> GroupSession:
    """A trainer schedules their own group sessions; staff and services anyone's."""
    async with runtime.database.transaction() as db:
        scheduled = await commands.schedule_group(
            db,
            by=caller,
            trainer_id=scheduling.trainer_id,
            session_date=scheduling.session_date,
            capacity=scheduling.capacity,
            duration=scheduling.duration or DEFAULT_DURATION,
            location=scheduling.location,
            notes=scheduling.notes,
        )
        return GroupSession.of(scheduled, shown_to=caller)


@router.get("/{session_id}", response_model=GroupSession, responses=NOT_FOUND)
async def get_group_session(
    session_id: GroupSessionId, caller: CallerDep, runtime: Runtime
) -> GroupSession:
    async with runtime.database.transaction() as db:
        found = await group_session_by_id(db, session_id)
        if not may_see_group(caller, found):
            raise GroupSessionNotFound(session_id)
        return GroupSession.of(found, shown_to=caller)


@router.get("", response_model=list[GroupSession], responses=BAD_LISTING)
async def list_group_sessions(
    runtime: Runtime,
    caller: CallerDep,
    page: PageAsked,
    user_id: UserIdFilter = None,
    trainer_id: TrainerIdFilter = None,
    session_status: Annotated[GroupSessionStatus | None, Query(alias="status")] = None,
) -> list[GroupSession]:
    """The group sessions matching every filter given (`userId`: those in which the client
    has or had a place), among those the caller may see, the earliest first. Page with
    `limit` and `after`."""
    async with runtime.database.transaction() as db:
        found = await search_groups(
            db,
            visible_to=caller,
            user_id=user_id,
            trainer_id=trainer_id,
            status=session_status,
            page=page,
        )
        return [GroupSession.of(each, shown_to=caller) for each in found]


@router.put(
    "/{session_id}/participants/{user_id}",
    status_code=status.HTTP_201_CREATED,
    response_model=GroupSession,
    responses={
        200: {
            "model": GroupSession,
            "description": "The client held the place already: nothing changed",
        },
        **NOT_FOUND,
        409: {
            "description": "The session is full or not scheduled, the client gave up their"
            " place before, or has no session credits available as far as booking knows"
        },
    },
)
async def join_group_session(
    session_id: GroupSessionId,
    user_id: ClientId,
    caller: CallerDep,
    runtime: Runtime,
    commands: Commands,
    response: Response,
    place: PlaceRequest | None = None,
) -> GroupSession:
    """A client takes their own place; the session's trainer, staff and services anyone's,
    and only staff and services without credit, by saying so."""
    allow_without_credit = place is not None and place.allow_without_credit
    async with runtime.database.transaction() as db:
        taken = await commands.join(
            db, session_id, user_id, by=caller, allow_without_credit=allow_without_credit
        )
        answer = GroupSession.of(taken.session, shown_to=caller)
    if not taken.new:
        response.status_code = status.HTTP_200_OK
    if taken.without_credit:
        what = f"place in group session {session_id} taken"
        log_without_credit(what, user_id, taken.available, caller)
    return answer


@router.delete(
    "/{session_id}/participants/{user_id}",
    response_model=GroupSession,
    responses={
        404: {
            "description": "No such group session, one the caller may not see, or no place"
            " of this client in it"
        },
        **CONFLICT,
    },
)
async def leave_group_session(
    session_id: GroupSessionId,
    user_id: ClientId,
    caller: CallerDep,
    runtime: Runtime,
    commands: Commands,
    reason: Annotated[Reason | None, Query(description="Why the place is given up")] = None,
) -> GroupSession:
    """A client gives up their own place; the session's trainer, staff and services
    anyone's."""
    async with runtime.database.transaction() as db:
        left = await commands.leave(db, session_id, user_id, by=caller, reason=reason)
        return GroupSession.of(left, shown_to=caller)


@router.patch("/{session_id}", response_model=GroupSession, responses={**NOT_FOUND, **CONFLICT})
async def change_group_session(
    session_id: GroupSessionId,
    change: GroupSessionChange,
    caller: CallerDep,
    runtime: Runtime,
    commands: Commands,
) -> GroupSession:
    """Its trainer, staff and services complete, cancel or reschedule it."""
    async with runtime.database.transaction() as db:
        if change.status is not None:
            changed = await commands.change_group_status(
                db,
                session_id,
                change.status,
                by=caller,
                reason=change.reason,
                no_shows=frozenset(change.no_shows or ()),
            )
        else:
            assert change.session_date is not None  # one or the other, by validation
            changed = await commands.reschedule_group(
                db, session_id, change.session_date, by=caller
            )
        return GroupSession.of(changed, shown_to=caller)
