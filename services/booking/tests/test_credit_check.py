"""The API books against what the ledger told booking of the client's credits, on a real
database: refused (409) with nothing available, allowed with a credit or an unlimited
package valid at the session's date, and booked anyway when staff or a service say so."""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from httpx import AsyncClient

from contracts.events import (
    Balance,
    CancellationPolicy,
    CreditDeductionRejected,
    CreditsExpired,
    CreditsGranted,
    CreditsRunningLow,
    EventPayload,
    GrantedPackage,
    PackageExpiringSoon,
    PackageType,
    SessionBooked,
    SessionCreditDeducted,
    SessionCreditForfeited,
    SessionCreditRestored,
    SoloWorkoutCounted,
)
from contracts.identity import Role
from ops.identity import LocalIdentity
from servicekit.consumer import Outcome
from servicekit.runtime import ServiceRuntime
from testkit.events import CLIENT, TRAINER
from testkit.helpers import Deliver, RecordingDeadLetters, outbox_events

pytestmark = pytest.mark.infra

DATE = datetime(2026, 1, 15, 10, tzinfo=UTC)
BOOKING = {"userId": CLIENT, "trainerId": TRAINER, "sessionDate": "2026-01-15T10:00:00Z"}
HINT = (
    "; a purchase reaches booking a moment after credits grants it, so one just made may not"
    " have arrived yet: try again shortly"
)


def balance(available: int, *, held: int = 0) -> Balance:
    return Balance(total=10, used=10 - available - held, remaining=available + held, held=held)


def granted(available: int = 10, package: GrantedPackage | None = None) -> CreditsGranted:
    return CreditsGranted(user_id=CLIENT, amount=10, balance=balance(available), package=package)


def unlimited(valid_until: datetime | None) -> CreditsGranted:
    package = GrantedPackage(
        package_type=PackageType.UNLIMITED,
        valid_until=valid_until,
        package_id=uuid.uuid4(),
        purchased_at=DATE - timedelta(days=60),
    )
    return CreditsGranted(
        user_id=CLIENT, amount=0, balance=Balance(total=0, used=0, remaining=0), package=package
    )


@pytest.fixture
def headers(identity: LocalIdentity) -> dict[Role, dict[str, str]]:
    """Each role's headers: the client is CLIENT, the trainer TRAINER."""
    subjects = {
        Role.CLIENT: CLIENT,
        Role.TRAINER: TRAINER,
        Role.STAFF: "ana",
        Role.SERVICE: "kiosk",
    }
    return {
        role: {"authorization": f"Bearer {identity.token(role, str(subject))}"}
        for role, subject in subjects.items()
    }


async def book_as(
    api: AsyncClient, headers: dict[str, str], **fields: Any
) -> tuple[int, dict[str, Any]]:
    response = await api.post("/api/sessions", json={**BOOKING, **fields}, headers=headers)
    answer: dict[str, Any] = response.json()
    return response.status_code, answer


@pytest.mark.parametrize("role", list(Role))
async def test_nothing_available_is_a_409_with_the_reason_and_changes_nothing(
    api: AsyncClient,
    runtime: ServiceRuntime,
    headers: dict[Role, dict[str, str]],
    role: Role,
) -> None:
    status, answer = await book_as(api, headers[role])
    assert status == 409
    assert answer == {
        "detail": f"client {CLIENT} has no session credits available (available 0)" + HINT
    }
    assert await outbox_events(runtime.database) == []
    assert (await api.get("/api/sessions")).json() == []
    # No id was taken either: the next booking gets the first.
    status, answer = await book_as(api, headers[Role.STAFF], allowWithoutCredit=True)
    assert (status, answer["id"]) == (201, 1)


@pytest.mark.parametrize("role", [Role.CLIENT, Role.TRAINER, Role.STAFF])
async def test_a_credit_available_lets_the_client_be_booked(
    api: AsyncClient, deliver: Deliver, headers: dict[Role, dict[str, str]], role: Role
) -> None:
    assert await deliver(granted(available=1)) is Outcome.APPLIED
    status, answer = await book_as(api, headers[role])
    assert status == 201, answer
    assert (answer["userId"], answer["bookedWithoutCredit"]) == (CLIENT, False)


async def test_the_latest_balance_stands_and_a_replayed_older_one_does_not_move_it(
    api: AsyncClient, deliver: Deliver, headers: dict[Role, dict[str, str]]
) -> None:
    client = headers[Role.CLIENT]
    assert await deliver(granted(available=2), event_id="grant") is Outcome.APPLIED
    low = CreditsRunningLow(user_id=CLIENT, threshold=0, balance=balance(0, held=2), caused_by="x")
    assert await deliver(low) is Outcome.APPLIED
    status, answer = await book_as(api, client)
    assert (status, answer["detail"]) == (
        409,
        f"client {CLIENT} has no session credits available (available 0)" + HINT,
    )
    # The grant delivered again (a replay, a redelivery) is a duplicate: nothing moves back.
    assert await deliver(granted(available=2), event_id="grant") is Outcome.DUPLICATE
    assert (await book_as(api, client))[0] == 409
    restored = SessionCreditRestored(
        user_id=CLIENT, session_id=9, reason="session cancelled", balance=balance(1, held=1)
    )
    assert await deliver(restored) is Outcome.APPLIED
    assert (await book_as(api, client))[0] == 201


@pytest.mark.parametrize(
    "valid_until",
    [None, DATE + timedelta(hours=1), DATE + timedelta(days=30)],
    ids=["never ends", "ends an hour after", "ends a month after"],
)
async def test_an_unlimited_package_valid_at_the_sessions_date_lets_the_client_book(
    api: AsyncClient,
    deliver: Deliver,
    headers: dict[Role, dict[str, str]],
    valid_until: datetime | None,
) -> None:
    assert await deliver(unlimited(valid_until)) is Outcome.APPLIED
    status, answer = await book_as(api, headers[Role.CLIENT])
    assert (status, answer.get("bookedWithoutCredit")) == (201, False)


async def test_an_unlimited_package_ended_by_the_sessions_date_does_not(
    api: AsyncClient, deliver: Deliver, headers: dict[Role, dict[str, str]]
) -> None:
    assert await deliver(unlimited(datetime(2026, 2, 1, tzinfo=UTC))) is Outcome.APPLIED
    assert (await book_as(api, headers[Role.CLIENT], sessionDate="2026-01-31T18:00:00Z"))[0] == 201
    status, answer = await book_as(api, headers[Role.CLIENT], sessionDate="2026-02-03T10:00:00Z")
    assert (status, answer["detail"]) == (
        409,
        f"client {CLIENT} has no session credits available (available 0), and their unlimited"
        " package is valid only until 2026-02-01T00:00:00Z, before the session on"
        " 2026-02-03T10:00:00Z" + HINT,
    )


@pytest.mark.parametrize("role", [Role.STAFF, Role.SERVICE])
async def test_staff_and_services_book_without_credit_by_saying_so(
    api: AsyncClient,
    runtime: ServiceRuntime,
    headers: dict[Role, dict[str, str]],
    role: Role,
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="booking.api"):
        status, answer = await book_as(api, headers[role], allowWithoutCredit=True)
    assert status == 201, answer
    assert (answer["status"], answer["bookedWithoutCredit"]) == ("scheduled", True)
    # Recorded: who booked whom without credit, with what booking knew then.
    subject = {Role.STAFF: "ana", Role.SERVICE: "kiosk"}[role]
    assert caplog.messages == [
        f"session {answer['id']} booked for client {CLIENT} without credit (available 0)"
        f" by {role} {subject}"
    ]
    # The booking announced is an ordinary one: credits records its hold past zero.
    [event] = await outbox_events(runtime.database)
    assert isinstance(event.payload, SessionBooked)
    assert (event.payload.session_id, event.payload.user_id) == (answer["id"], CLIENT)
    # Read later, it is a session like any other.
    read = (await api.get(f"/api/sessions/{answer['id']}")).json()
    assert "bookedWithoutCredit" not in read
    assert read == {k: v for k, v in answer.items() if k != "bookedWithoutCredit"}


async def test_an_override_that_was_not_needed_is_answered_as_such(
    api: AsyncClient, deliver: Deliver, headers: dict[Role, dict[str, str]]
) -> None:
    await deliver(granted(available=3))
    status, answer = await book_as(api, headers[Role.STAFF], allowWithoutCredit=True)
    assert (status, answer["bookedWithoutCredit"]) == (201, False)


@pytest.mark.parametrize("role", [Role.CLIENT, Role.TRAINER])
@pytest.mark.parametrize("available", [0, 5], ids=["nothing available", "credit available"])
async def test_a_client_or_trainer_asking_to_book_without_credit_gets_403(
    api: AsyncClient,
    deliver: Deliver,
    runtime: ServiceRuntime,
    headers: dict[Role, dict[str, str]],
    role: Role,
    available: int,
) -> None:
    await deliver(granted(available=available))
    status, answer = await book_as(api, headers[role], allowWithoutCredit=True)
    assert (status, answer) == (
        403,
        {"detail": "only staff and platform services may book without credit"},
    )
    assert await outbox_events(runtime.database) == []
    # Saying false is saying nothing.
    status, _ = await book_as(api, headers[role], allowWithoutCredit=False)
    assert status == (201 if available else 409)


async def test_a_booking_for_someone_else_is_a_403_before_any_credit_check(
    api: AsyncClient, headers: dict[Role, dict[str, str]]
) -> None:
    status, answer = await book_as(api, headers[Role.CLIENT], userId=CLIENT + 1)
    assert status == 403
    assert answer["detail"].startswith("a client books only for themselves")


def every_ledger_event() -> list[EventPayload]:
    package = uuid.uuid4()
    return [
        granted(available=5, package=None),
        SessionCreditDeducted(
            user_id=CLIENT,
            session_id=5,
            trainer_id=TRAINER,
            cause="workout-logged",
            balance=balance(4),
            package_id=package,
            delivered_at=DATE,
        ),
        SessionCreditForfeited(
            user_id=CLIENT,
            session_id=6,
            trainer_id=TRAINER,
            cause="late-cancel",
            policy=CancellationPolicy(late_cancel_hours=24),
            package_id=package,
            balance=balance(3),
            caused_by="cancel-6",
        ),
        SessionCreditRestored(
            user_id=CLIENT,
            session_id=6,
            reason="waived by staff",
            balance=balance(4),
            package_id=package,
            restores="forfeit",
        ),
        SoloWorkoutCounted(
            user_id=CLIENT,
            workout_id=uuid.uuid4(),
            package_id=package,
            solo_used=3,
            solo_allowance=2,
            over=1,
            caused_by="workout",
        ),
        CreditDeductionRejected(user_id=CLIENT, session_id=7, reason="session 7 is cancelled"),
        PackageExpiringSoon(user_id=CLIENT, package_id=package, valid_until=DATE, sessions_left=1),
        CreditsExpired(
            user_id=CLIENT,
            package_id=package,
            amount=1,
            valid_until=DATE,
            balance=Balance(total=10, used=6, expired=1, remaining=3, held=2),
        ),
        CreditsRunningLow(
            user_id=CLIENT,
            threshold=1,
            balance=Balance(total=10, used=9, remaining=1, held=1),
            caused_by="hold",
        ),
    ]


async def test_every_ledger_event_is_applied_or_ignored_never_dead_lettered(
    api: AsyncClient,
    deliver: Deliver,
    dead_letters: RecordingDeadLetters,
    headers: dict[Role, dict[str, str]],
) -> None:
    outcomes = {type(e).__name__: await deliver(e) for e in every_ledger_event()}
    assert outcomes == {
        "CreditsGranted": Outcome.APPLIED,
        "SessionCreditDeducted": Outcome.APPLIED,
        "SessionCreditForfeited": Outcome.APPLIED,
        "SessionCreditRestored": Outcome.APPLIED,
        "SoloWorkoutCounted": Outcome.IGNORED,
        "CreditDeductionRejected": Outcome.IGNORED,
        "PackageExpiringSoon": Outcome.IGNORED,
        "CreditsExpired": Outcome.APPLIED,
        "CreditsRunningLow": Outcome.APPLIED,
    }
    assert dead_letters.sent == []
    # The last balance left nothing available (one remaining, one held).
    assert (await book_as(api, headers[Role.CLIENT]))[0] == 409
