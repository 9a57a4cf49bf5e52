"""The credits HTTP API: balances and packages, the ledger that explains them, staff grants
and waivers, and the deductions parked until their session's booking arrives."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from functools import partial
from typing import Annotated, Literal, cast

from fastapi import APIRouter, Header, Path, Query, Request, Response, status
from pydantic import Field, PositiveInt

from contracts.events import (
    MAX_CREDITS_PER_GRANT,
    MAX_ID,
    MAX_REASON_LENGTH,
    STORABLE,
    Balance,
    ContractModel,
    PackageType,
)
from credits.access import GRANT_RULE, PARKED_RULE, WAIVER_RULE, trains
from credits.queries import balance_and_packages, ledger_page, parked_page
from credits.rules import Package as LedgerPackage
from credits.rules import Place
from credits.settings import Settings
from credits.store import LedgerStore, Scope
from servicekit.auth import CallerDep, forbidden, require_client_records
from servicekit.runtime import Runtime, ServiceRuntime

router = APIRouter(prefix="/api/credits", tags=["credits"])

UserId = Annotated[int, Path(gt=0, le=MAX_ID, description="The client's user id")]


class PackageView(ContractModel):
    """One of a client's packages: what it gives, until when, and what is left of it."""

    package_id: uuid.UUID
    purchase_id: str | None
    name: str | None
    package_type: PackageType
    status: Annotated[
        Literal["active", "used-up", "expired"],
        Field(description="expired once its end has passed; used-up when nothing is left"),
    ]
    valid_until: datetime | None
    purchased_at: datetime
    sessions: Annotated[int, Field(description="Trainer-led sessions it gives (counted types)")]
    used: int
    expired: int
    left: Annotated[int | None, Field(description="Sessions left; null when not counted")]
    weekly_cap: int | None
    solo_workouts: Annotated[int | None, Field(description="A hybrid package's solo allowance")]
    solo_used: int
    solo_left: int | None
    solo_over: Annotated[int, Field(description="Solo workouts past the allowance")]

    @classmethod
    def of(cls, package: LedgerPackage, now: datetime) -> PackageView:
        allowance = package.solo_allowance
        status: Literal["active", "used-up", "expired"] = "active"
        if package.closed or not package.valid_at(now):
            status = "expired"
        elif package.counted and package.left <= 0:
            status = "used-up"
        return cls(
            package_id=package.id,
            purchase_id=package.purchase_id,
            name=package.name,
            package_type=package.type,
            status=status,
            valid_until=package.valid_until,
            purchased_at=package.purchased_at,
            sessions=package.sessions,
            used=package.used,
            expired=package.expired,
            left=package.left if package.counted else None,
            weekly_cap=package.weekly_cap,
            solo_workouts=allowance,
            solo_used=package.solo_used,
            solo_left=max(allowance - package.solo_used, 0) if allowance is not None else None,
            solo_over=max(package.solo_used - allowance, 0) if allowance is not None else 0,
        )


class CreditBalance(ContractModel):
    user_id: int
    total: int
    used: int
    remaining: int
    held: Annotated[int, Field(description="Reserved by sessions booked, not yet delivered")]
    available: Annotated[int, Field(description="remaining - held: what a booking may use")]
    expired: int
    packages: list[PackageView]

    @classmethod
    def of(
        cls, user_id: int, balance: Balance, packages: list[LedgerPackage], now: datetime
    ) -> CreditBalance:
        views = [PackageView.of(package, now) for package in packages]
        return cls(user_id=user_id, **balance.model_dump(), packages=views)


class LedgerLine(ContractModel):
    """One entry of the ledger and the balance right after it."""

    id: uuid.UUID
    kind: str
    amount: int
    purchase_id: str | None
    session_id: int | None
    trainer_id: int | None
    workout_id: uuid.UUID | None
    package_id: Annotated[uuid.UUID | None, Field(description="The package it draws from")]
    cause: str | None
    reason: str | None
    caused_by: str
    effective_at: Annotated[
        datetime | None,
        Field(description="When it took effect: a session's day, a purchase, a package's end"),
    ]
    recorded_at: datetime
    remaining_after: int


class ParkedDeduction(ContractModel):
    """A deduction waiting for its session's booking: applied when the booking arrives,
    withdrawn (never charged) when staff cancel the workout in the workouts service."""

    id: Annotated[int, Field(description="Its place in the queue: `after` for the next page")]
    session_id: int
    user_id: Annotated[int, Field(description="The client")]
    trainer_id: int
    workout_id: uuid.UUID | None
    cause: str
    caused_by: Annotated[str, Field(description="The id of the event that asked for it")]
    parked_at: datetime
    age_seconds: Annotated[int, Field(description="How long it has waited, in whole seconds")]


#: What a parked deduction's answer takes unchanged from its row.
_PARKED_AS_STORED = (
    "id",
    "session_id",
    "user_id",
    "trainer_id",
    "workout_id",
    "cause",
    "caused_by",
)


class WaiverRequest(ContractModel):
    session_id: Annotated[int, Field(gt=0, le=MAX_ID, description="The session forfeited")]
    reason: Annotated[str, Field(min_length=1, max_length=MAX_REASON_LENGTH), STORABLE]


class GrantRequest(ContractModel):
    sessions: Annotated[PositiveInt, Field(le=MAX_CREDITS_PER_GRANT, description="Credits to add")]
    reason: Annotated[str, Field(min_length=1, max_length=MAX_REASON_LENGTH), STORABLE]


DEFAULT_PAGE = 100
MAX_PAGE = 1000
PageLimit = Annotated[int, Query(ge=1, le=MAX_PAGE)]


def _link_next_page(request: Request, response: Response, *, after: str, limit: int) -> None:
    """Name the next page in the `Link` header (`rel="next"`)."""
    following = request.url.include_query_params(after=after, limit=limit)
    response.headers["Link"] = f'<{following.path}?{following.query}>; rel="next"'


# Before `/{user_id}`, whose path "pending" would match too (and fail as not an id).
@router.get("/pending", response_model=list[ParkedDeduction])
async def get_parked_deductions(
    caller: CallerDep,
    runtime: Runtime,
    request: Request,
    response: Response,
    after: Annotated[
        int | None,
        Query(ge=0, le=MAX_ID, description="The `id` of the last of the page before"),
    ] = None,
    limit: PageLimit = DEFAULT_PAGE,
) -> list[ParkedDeduction]:
    """Staff only: the deductions parked until their session's booking arrives, oldest
    first, a page at a time (the `Link` header names the next, as for the ledger)."""
    if not caller.is_staff:
        raise forbidden(PARKED_RULE)
    async with runtime.database.transaction() as db:
        page = await parked_page(db, after=after, limit=limit)
    parked = [
        ParkedDeduction(
            **{name: getattr(row, name) for name in _PARKED_AS_STORED},
            parked_at=row.received_at,
            age_seconds=int(age),
        )
        for row, age in page.deductions
    ]
    if page.more:
        _link_next_page(request, response, after=str(parked[-1].id), limit=limit)
    return parked


@router.get("/{user_id}", response_model=CreditBalance)
async def get_balance(user_id: UserId, caller: CallerDep, runtime: Runtime) -> CreditBalance:
    """A client reads their own balance, a trainer those of the clients they train."""
    async with runtime.database.transaction() as db:
        await require_client_records(caller, user_id, trains=partial(trains, db), what="balance")
        balance, packages = await balance_and_packages(db, user_id)
    return CreditBalance.of(user_id, balance, packages, datetime.now(UTC))


@router.get("/{user_id}/packages", response_model=list[PackageView])
async def get_packages(user_id: UserId, caller: CallerDep, runtime: Runtime) -> list[PackageView]:
    """The client's packages in the order they pay: soonest to expire, then the oldest.
    Readable by whoever may read the balance."""
    async with runtime.database.transaction() as db:
        await require_client_records(caller, user_id, trains=partial(trains, db), what="packages")
        _, packages = await balance_and_packages(db, user_id)
    now = datetime.now(UTC)
    return [PackageView.of(package, now) for package in packages]


@router.get(
    "/{user_id}/ledger",
    response_model=list[LedgerLine],
    responses={422: {"description": "Invalid, or `after` names no entry of this ledger"}},
)
async def get_ledger(
    user_id: UserId,
    caller: CallerDep,
    runtime: Runtime,
    request: Request,
    response: Response,
    after: Annotated[
        uuid.UUID | None,
        Query(description="The `id` of the last entry of the page before: the next page"),
    ] = None,
    limit: PageLimit = DEFAULT_PAGE,
) -> list[LedgerLine]:
    """The entries that explain the balance, oldest first, a page at a time. When more
    follow, the `Link` header names the next page (`rel="next"`). Readable by whoever may
    read the balance."""
    async with runtime.database.transaction() as db:
        await require_client_records(caller, user_id, trains=partial(trains, db), what="ledger")
        page = await ledger_page(db, user_id, after=after, limit=limit)
    lines = [
        LedgerLine(
            id=entry.id,
            kind=entry.kind,
            amount=entry.amount,
            purchase_id=entry.purchase_id,
            session_id=entry.session_id,
            trainer_id=entry.trainer_id,
            workout_id=entry.workout_id,
            package_id=entry.package_id,
            cause=entry.cause,
            reason=entry.reason,
            caused_by=entry.caused_by,
            effective_at=entry.effective_at,
            recorded_at=entry.recorded_at,
            remaining_after=remaining,
        )
        for entry, remaining in page.entries
    ]
    if page.more:
        _link_next_page(request, response, after=str(lines[-1].id), limit=limit)
    return lines


@router.post("/{user_id}/grants", status_code=status.HTTP_201_CREATED, response_model=CreditBalance)
async def grant_credits(
    user_id: UserId,
    grant: GrantRequest,
    caller: CallerDep,
    runtime: Runtime,
    idempotency_key: Annotated[
        str | None,
        Header(max_length=200, description="Send the same key again to retry safely"),
    ] = None,
) -> CreditBalance:
    """Staff only."""
    if not caller.is_staff:
        raise forbidden(GRANT_RULE)
    request_id = idempotency_key or str(uuid.uuid4())
    grant_key = f"staff:{user_id}:{request_id}"
    scope = Scope(grant_keys=frozenset({grant_key}), clients=frozenset({user_id}))
    now = datetime.now(UTC)
    async with (
        runtime.database.transaction() as db,
        _store(runtime).ledger_for(db, scope) as ledger,
    ):
        ledger.grant_by_staff(
            user_id=user_id, amount=grant.sessions, reason=grant.reason, grant_key=grant_key, at=now
        )
    return CreditBalance.of(user_id, ledger.balance_of(user_id), ledger.packages_of(user_id), now)


@router.post(
    "/{user_id}/waivers",
    status_code=status.HTTP_201_CREATED,
    response_model=CreditBalance,
    responses={404: {"description": "The client forfeited no credit for that session"}},
)
async def waive_forfeit(
    user_id: UserId, waiver: WaiverRequest, caller: CallerDep, runtime: Runtime
) -> CreditBalance:
    """Staff only: give back a credit forfeited by a late cancel or a no-show. Once per
    session: asking again changes nothing and answers the same."""
    if not caller.is_staff:
        raise forbidden(WAIVER_RULE)
    scope = Scope(
        sessions=frozenset({waiver.session_id}),
        # The client's place, should the session be a group's.
        places=frozenset({Place(waiver.session_id, user_id)}),
        clients=frozenset({user_id}),
    )
    async with (
        runtime.database.transaction() as db,
        _store(runtime).ledger_for(db, scope) as ledger,
    ):
        ledger.waive_forfeit(user_id=user_id, session_id=waiver.session_id, reason=waiver.reason)
    now = datetime.now(UTC)
    return CreditBalance.of(user_id, ledger.balance_of(user_id), ledger.packages_of(user_id), now)


def _store(runtime: ServiceRuntime) -> LedgerStore:
    return cast(Settings, runtime.settings).ledger_store(runtime.outbox, runtime.consumer)
