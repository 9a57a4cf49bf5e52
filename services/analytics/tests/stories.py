"""Events of the spec's examples, and of a client under the credit policies (holds, a
forfeit, an expiry and the heads-ups), as the workouts and credits services publish them;
and `caller`, calling the service with a token."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient

from contracts.events import (
    LATE_CANCEL,
    Balance,
    CancellationPolicy,
    CreditDeductionRejected,
    CreditsExpired,
    CreditsGranted,
    CreditsRunningLow,
    EventPayload,
    PackageExpiringSoon,
    SessionCreditDeducted,
    SessionCreditForfeited,
    SessionCreditRestored,
    SoloWorkoutCounted,
    WorkoutLogged,
)
from contracts.identity import Role
from ops.identity import LocalIdentity
from testkit.events import CLIENT, TRAINER, workout

OTHER_CLIENT = 789
#: The packages of the credit policies' story: one that expires, one that does not.
EXPIRING_PACKAGE = uuid.UUID("00000000-0000-4000-8000-00000000000a")
LASTING_PACKAGE = uuid.UUID("00000000-0000-4000-8000-00000000000b")
#: Monday of the spec's Example 1, week 1.
WEEK_1 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def day(n: int) -> datetime:
    return WEEK_1 + timedelta(days=n)


def logged(
    kind: str = "solo",
    status: str = "completed",
    *,
    workout_id: uuid.UUID | None = None,
    user_id: int = CLIENT,
    session_id: int = 1,
) -> WorkoutLogged:
    """A solo workout, or a `trainer-led` one for `session_id`, done in the spec's week 1."""
    trainer_led = kind == "trainer-led"
    return workout(
        session_id if trainer_led else None,
        status=status,
        user_id=user_id,
        workout_id=workout_id,
        title="Personal Training Session" if trainer_led else "Morning Chest Day",
        date=WEEK_1,
    )


def balance(total: int, used: int, *, held: int = 0, expired: int = 0) -> Balance:
    """As the ledger figures it: remaining and available follow from the rest."""
    return Balance(
        total=total, used=used, remaining=total - used - expired, held=held, expired=expired
    )


def full_balance(total: int, used: int, *, held: int = 0, expired: int = 0) -> dict[str, int]:
    """A balance's JSON, every field of it, as the usage answer and its event carry it."""
    remaining = total - used - expired
    return {
        "total": total,
        "used": used,
        "remaining": remaining,
        "held": held,
        "expired": expired,
        "available": remaining - held,
    }


def granted(
    total: int, used: int = 0, *, amount: int | None = None, held: int = 0
) -> CreditsGranted:
    return CreditsGranted(
        user_id=CLIENT,
        amount=amount or total,
        purchase_id="order-1",
        balance=balance(total, used, held=held),
    )


def deducted(session_id: int, total: int, used: int, *, held: int = 0) -> SessionCreditDeducted:
    return SessionCreditDeducted(
        user_id=CLIENT,
        session_id=session_id,
        trainer_id=TRAINER,
        cause="workout-logged",
        balance=balance(total, used, held=held),
    )


def forfeited(session_id: int, leaves: Balance) -> SessionCreditForfeited:
    """Cancelled inside a 24-hour window: the hold becomes a charge."""
    return SessionCreditForfeited(
        user_id=CLIENT,
        session_id=session_id,
        trainer_id=TRAINER,
        cause=LATE_CANCEL,
        policy=CancellationPolicy(late_cancel_hours=24),
        balance=leaves,
        caused_by=f"cancel-{session_id}",
    )


def expired(amount: int, leaves: Balance) -> CreditsExpired:
    return CreditsExpired(
        user_id=CLIENT,
        package_id=EXPIRING_PACKAGE,
        amount=amount,
        valid_until=day(8),
        balance=leaves,
    )


def running_low(threshold: int, leaves: Balance) -> CreditsRunningLow:
    return CreditsRunningLow(
        user_id=CLIENT, threshold=threshold, balance=leaves, caused_by="the-entry-that-crossed"
    )


def solo_counted(workout: WorkoutLogged, solo_used: int) -> SoloWorkoutCounted:
    """No balance: a solo workout against a hybrid package's allowance of 8."""
    return SoloWorkoutCounted(
        user_id=CLIENT,
        workout_id=workout.workout_id,
        package_id=LASTING_PACKAGE,
        solo_used=solo_used,
        solo_allowance=8,
        over=0,
        caused_by=f"log-{workout.workout_id}",
    )


def expiring_soon(sessions_left: int) -> PackageExpiringSoon:
    """No balance: the heads-up before the expiring package ends."""
    return PackageExpiringSoon(
        user_id=CLIENT,
        package_id=EXPIRING_PACKAGE,
        valid_until=day(8),
        sessions_left=sessions_left,
    )


def restored(session_id: int, total: int, used: int) -> SessionCreditRestored:
    return SessionCreditRestored(
        user_id=CLIENT,
        session_id=session_id,
        reason="session cancelled",
        balance=balance(total, used),
    )


def deduction_rejected(session_id: int) -> CreditDeductionRejected:
    return CreditDeductionRejected(
        user_id=CLIENT, session_id=session_id, reason="session 1 is cancelled"
    )


#: One timed, identified event of a story: (event id, time, payload).
Step = tuple[str, datetime, EventPayload]


def example_1() -> tuple[list[Step], list[Step]]:
    """A client with a 10-session package, over two weeks: the workouts topic's events and
    the ledger's, each in its own topic's order."""
    workouts: list[Step] = [
        ("w1-mon-solo", day(0), logged("solo")),
        ("w1-wed-trainer", day(2), logged("trainer-led", session_id=1)),
        ("w1-fri-solo", day(4), logged("solo")),
        ("w2-mon-solo", day(7), logged("solo")),
        ("w2-thu-trainer", day(10), logged("trainer-led", session_id=2)),
        ("w2-sat-solo", day(12), logged("solo")),
    ]
    ledger: list[Step] = [
        ("package", day(0) - timedelta(days=1), granted(10)),
        ("deduct-1", day(2) + timedelta(minutes=1), deducted(1, 10, 1)),
        ("deduct-2", day(10) + timedelta(minutes=1), deducted(2, 10, 2)),
    ]
    return workouts, ledger


EXAMPLE_1_USAGE = {
    "total": 6,
    "solo": {"count": 4, "percentage": 66.7},
    "trainerLed": {"count": 2, "percentage": 33.3},
    "trainerAssisted": {"count": 0, "percentage": 0.0},
    "group": {"count": 0, "percentage": 0.0},
    "credits": {"total": 10, "used": 2, "remaining": 8, "held": 0, "expired": 0, "available": 8},
}


def credit_policies() -> tuple[list[Step], list[Step]]:
    """A client with two 5-session packages, one of which expires on day 8: a session
    delivered while the next is booked (held), that one cancelled late (forfeited), a third
    booked, 3 credits expiring; and the ledger's events without a balance (a solo workout
    counted, a package's heads-up), which change no usage. Each topic in its own order."""
    first_solo, last_solo = logged("solo"), logged("solo")
    workouts: list[Step] = [
        ("solo-day-1", day(1), first_solo),
        ("trainer-day-2", day(2), logged("trainer-led", session_id=1)),
        ("solo-day-9", day(9), last_solo),
    ]
    ledger: list[Step] = [
        ("package-a", day(-1), granted(5)),
        ("package-b", day(-1) + timedelta(hours=1), granted(10, amount=5)),
        ("solo-counted-1", day(1) + timedelta(minutes=1), solo_counted(first_solo, 1)),
        ("deduct-1", day(2) + timedelta(minutes=1), deducted(1, 10, 1, held=1)),
        ("forfeit-2", day(4), forfeited(2, balance(10, 2))),
        ("expiring-soon", day(5), expiring_soon(3)),
        ("expired", day(8), expired(3, balance(10, 2, held=1, expired=3))),
        (
            "running-low",
            day(8) + timedelta(seconds=1),
            running_low(4, balance(10, 2, held=1, expired=3)),
        ),
        ("solo-counted-2", day(9) + timedelta(minutes=1), solo_counted(last_solo, 2)),
    ]
    return workouts, ledger


CREDIT_POLICIES_USAGE = {
    "total": 3,
    "solo": {"count": 2, "percentage": 66.7},
    "trainerLed": {"count": 1, "percentage": 33.3},
    "trainerAssisted": {"count": 0, "percentage": 0.0},
    "group": {"count": 0, "percentage": 0.0},
    "credits": {"total": 10, "used": 2, "remaining": 5, "held": 1, "expired": 3, "available": 4},
}

#: Its Session Credits chart below the rule: held and expired beside used and remaining.
CREDIT_POLICIES_CREDIT_CHART = [
    "Used:      ███               2",
    "Remaining: ████████          5",
    "Held:      ██                1",
    "Expired:   █████             3",
    "Total:     ████████████████ 10",
]


def caller(app: FastAPI, identity: LocalIdentity, role: Role, subject: int | str) -> AsyncClient:
    """A client of the service calling with a token of `role` for `subject`."""
    token = identity.token(role, str(subject))
    return AsyncClient(
        transport=ASGITransport(app=app),
        base_url="http://analytics",
        headers={"authorization": f"Bearer {token}"},
    )
