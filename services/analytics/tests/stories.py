"""Events of the spec's examples, as the workouts and credits services publish them."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from contracts.events import (
    Balance,
    CreditDeductionRejected,
    CreditsGranted,
    EventPayload,
    SessionCreditDeducted,
    SessionCreditRestored,
    WorkoutLogged,
)
from testkit.events import CLIENT, TRAINER, workout

OTHER_CLIENT = 789
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


def balance(total: int, used: int) -> Balance:
    return Balance(total=total, used=used, remaining=total - used)


def granted(total: int, used: int = 0, *, amount: int | None = None) -> CreditsGranted:
    return CreditsGranted(
        user_id=CLIENT, amount=amount or total, purchase_id="order-1", balance=balance(total, used)
    )


def deducted(session_id: int, total: int, used: int) -> SessionCreditDeducted:
    return SessionCreditDeducted(
        user_id=CLIENT,
        session_id=session_id,
        trainer_id=TRAINER,
        cause="workout-logged",
        balance=balance(total, used),
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
    "credits": {"total": 10, "used": 2, "remaining": 8},
}
