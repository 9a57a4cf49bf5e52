"""The booking HTTP API: book sessions, look them up, move them along their lifecycle."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Annotated, Any, Self

from fastapi import APIRouter, Depends, Path, Query, Request, status
from pydantic import AfterValidator, AwareDatetime, BeforeValidator, Field, Strict, model_validator

from booking.access import may_see
from booking.commands import BookingCommands
from booking.models import GroupSession, TrainingSession
from booking.queries import Page, search, session_by_id
from booking.rules import (
    DEFAULT_DURATION,
    MAX_BOOKED_DURATION,
    NotStorable,
    SessionNotFound,
    check_moment,
)
from contracts.events import (
    MAX_ID,
    MAX_LOCATION_LENGTH,
    MAX_NOTES_LENGTH,
    MAX_REASON_LENGTH,
    STORABLE,
    ContractModel,
)
from contracts.sessions import SessionStatus
from servicekit.auth import Caller, CallerDep
from servicekit.runtime import Runtime

router = APIRouter(prefix="/api/sessions", tags=["sessions"])
log = logging.getLogger(__name__)

MAX_PAGE = 500
DEFAULT_PAGE = 100
#: Far beyond any real listing, and well inside PostgreSQL's bigint OFFSET.
#: Deeper pages go by `after` (the last session of the page before): an offset makes the
#: database walk every row before it.
MAX_OFFSET = 10_000


def _rfc3339_text(value: object) -> object:
    # Without this, pydantic would also read numbers as Unix timestamps.
    if not isinstance(value, str):
        raise ValueError("must be an RFC 3339 date-time string with a time zone")
    return value


def _storable_moment(value: datetime) -> datetime:
    try:
        check_moment("date", value)
    except NotStorable as error:
        raise ValueError(error.reason) from None
    return value


EntityId = Annotated[int, Strict(), Field(gt=0, le=MAX_ID)]
SessionDate = Annotated[
    AwareDatetime, BeforeValidator(_rfc3339_text), AfterValidator(_storable_moment)
]


Location = Annotated[str, Field(max_length=MAX_LOCATION_LENGTH), STORABLE]
Notes = Annotated[str, Field(max_length=MAX_NOTES_LENGTH), STORABLE]
Reason = Annotated[str, Field(min_length=1, max_length=MAX_REASON_LENGTH), STORABLE]
#: Minutes; null or absent: the default.
Duration = Annotated[
    Annotated[int, Strict(), Field(gt=0, le=MAX_BOOKED_DURATION)] | None,
    Field(description=f"Minutes; {DEFAULT_DURATION} when absent"),
]
AllowWithoutCredit = Annotated[
    bool,
    Field(
        description="Book even when the client has nothing available (staff and services"
        " only; a client or trainer sending true gets 403)"
    ),
]


class BookingRequest(ContractModel):
    user_id: EntityId
    trainer_id: EntityId
    session_date: SessionDate
    duration: Duration = None
    location: Location | None = None
    notes: Notes | None = None
    allow_without_credit: AllowWithoutCredit = False


class SessionChange(ContractModel):
    """Either a new status (with an optional reason, such as why it was cancelled) or a new
    date for a session that has not started."""

    status: SessionStatus | None = None
    reason: Reason | None = None
    session_date: SessionDate | None = None

    @model_validator(mode="after")
    def _one_change_at_a_time(self) -> Self:
        if (self.status is None) == (self.session_date is None):
            raise ValueError("give either status or sessionDate")
        if self.reason is not None and self.status is None:
            raise ValueError("reason goes with a status change")
        return self


class Session(ContractModel):
    id: int
    user_id: int
    trainer_id: int
    session_date: datetime
    duration: int
    status: SessionStatus
    #: True once the credits service has deducted the session's credit (and not given it back).
    session_deducted: bool
    location: str | None
    notes: str | None
    status_reason: str | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, session: TrainingSession) -> Session:
        return cls(
            **as_stored(session),
            user_id=session.user_id,
            session_deducted=session.session_deducted,
        )


def as_stored(session: TrainingSession | GroupSession) -> dict[str, Any]:
    """What an answer about a session of either kind says as its row does, moments in UTC."""
    return {
        "id": session.id,
        "trainer_id": session.trainer_id,
        "session_date": session.session_date.astimezone(UTC),
        "duration": session.duration,
        "status": session.current_status,
        "location": session.location,
        "notes": session.notes,
        "status_reason": session.status_reason,
        "created_at": session.created_at.astimezone(UTC),
        "updated_at": session.updated_at.astimezone(UTC),
    }


class BookedSession(Session):
    """A session just booked. `bookedWithoutCredit`: the client had nothing available, as
    far as booking knew, and staff or a service booked it anyway (`allowWithoutCredit`)."""

    booked_without_credit: bool


SessionId = Annotated[int, Path(gt=0, le=MAX_ID, description="The session's id")]


def page_asked(
    limit: Annotated[int, Query(gt=0, le=MAX_PAGE)] = DEFAULT_PAGE,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
    after: Annotated[
        int | None,
        Query(gt=0, le=MAX_ID, description="The id of the last session of the page before"),
    ] = None,
) -> Page:
    return Page(limit, offset, after)


#: A listing's `limit`, `offset` and `after`.
PageAsked = Annotated[Page, Depends(page_asked)]
UserIdFilter = Annotated[int | None, Query(alias="userId", gt=0, le=MAX_ID)]
TrainerIdFilter = Annotated[int | None, Query(alias="trainerId", gt=0, le=MAX_ID)]
#: A listing's answer to an `after` it cannot place.
BAD_LISTING: dict[int | str, dict[str, Any]] = {
    422: {"description": "Invalid, or `after` names no session of this list"}
}


def log_without_credit(what: str, user_id: int, available: int, caller: Caller) -> None:
    """On record, once committed: who booked whom without credit, and what was available."""
    log.warning(
        "%s for client %d without credit (available %d) by %s %s",
        what,
        user_id,
        available,
        "/".join(sorted(caller.roles)),
        caller.subject,
    )


#: A session the caller may not see answers as one never booked.
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"description": "No such session, or one the caller may not see"}
}


def _commands(request: Request) -> BookingCommands:
    commands: BookingCommands = request.app.state.commands
    return commands


#: A route's `commands: Commands` parameter: the service's use cases (`main.create_app`).
Commands = Annotated[BookingCommands, Depends(_commands)]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=BookedSession,
    responses={
        409: {
            "description": "The client has no session credits available and no unlimited"
            " package valid at the session's date, as far as booking knows the ledger"
        }
    },
)
async def book_session(
    booking: BookingRequest, caller: CallerDep, runtime: Runtime, commands: Commands
) -> BookedSession:
    """A client books for themselves, a trainer as the session's trainer; staff and
    services for anyone, and may book without credit by saying so."""
    async with runtime.database.transaction() as db:
        booked = await commands.book(
            db,
            by=caller,
            user_id=booking.user_id,
            trainer_id=booking.trainer_id,
            session_date=booking.session_date,
            duration=booking.duration or DEFAULT_DURATION,
            location=booking.location,
            notes=booking.notes,
            allow_without_credit=booking.allow_without_credit,
        )
        answer = BookedSession(
            **Session.of(booked.session).model_dump(),
            booked_without_credit=booked.without_credit,
        )
    if booked.without_credit:
        log_without_credit(f"session {answer.id} booked", answer.user_id, booked.available, caller)
    return answer


@router.get("/{session_id}", response_model=Session, responses=NOT_FOUND)
async def get_session(session_id: SessionId, caller: CallerDep, runtime: Runtime) -> Session:
    async with runtime.database.transaction() as db:
        found = await session_by_id(db, session_id)
    if not may_see(caller, found):
        raise SessionNotFound(session_id)
    return Session.of(found)


@router.get("", response_model=list[Session], responses=BAD_LISTING)
async def list_sessions(
    runtime: Runtime,
    caller: CallerDep,
    page: PageAsked,
    user_id: UserIdFilter = None,
    trainer_id: TrainerIdFilter = None,
    session_status: Annotated[SessionStatus | None, Query(alias="status")] = None,
) -> list[Session]:
    """The sessions matching every filter given, among those the caller may see: a client's
    own, a trainer's those they train, whatever the query asks. Page with `limit` and
    `after`."""
    async with runtime.database.transaction() as db:
        found = await search(
            db,
            visible_to=caller,
            user_id=user_id,
            trainer_id=trainer_id,
            status=session_status,
            page=page,
        )
        return [Session.of(each) for each in found]


@router.patch(
    "/{session_id}",
    response_model=Session,
    responses={**NOT_FOUND, 409: {"description": "The session's status does not allow it"}},
)
async def change_session(
    session_id: SessionId,
    change: SessionChange,
    caller: CallerDep,
    runtime: Runtime,
    commands: Commands,
) -> Session:
    """Its trainer (and staff, and services) may make any change the lifecycle allows; its
    client may cancel it or move it to another date."""
    async with runtime.database.transaction() as db:
        if change.status is not None:
            changed = await commands.change_status(
                db, session_id, change.status, by=caller, reason=change.reason
            )
        else:
            assert change.session_date is not None  # one or the other, by validation
            changed = await commands.reschedule(db, session_id, change.session_date, by=caller)
        return Session.of(changed)
