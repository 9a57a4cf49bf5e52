"""What the analytics service does with each event it consumes: one record on the usage
book its batch loaded (`analytics.rules`).

Every ledger event that carries a `balance` sets the client's credits to it. Those without
one (CreditDeductionRejected, SoloWorkoutCounted, PackageExpiringSoon) have no handler on
purpose: they change no figure of usage, so the consumer ignores them (never a dead letter).
"""

from __future__ import annotations

from typing import get_args

from analytics.rules import UsageBook
from contracts.envelope import Event
from contracts.events import (
    CreditsExpired,
    CreditsGranted,
    CreditsRunningLow,
    EventPayload,
    SessionCreditDeducted,
    SessionCreditForfeited,
    SessionCreditRestored,
    WorkoutLogged,
    WorkoutStatusChanged,
)
from servicekit.domain import Handlers

BalanceEvent = (
    CreditsGranted
    | SessionCreditDeducted
    | SessionCreditRestored
    | SessionCreditForfeited
    | CreditsExpired
    | CreditsRunningLow
)
#: The ledger's events that carry a balance, the union's members (listed once).
BALANCE_EVENTS: tuple[type[EventPayload], ...] = get_args(BalanceEvent)
WORKOUT_EVENTS = (WorkoutLogged, WorkoutStatusChanged)


def on_workout(book: UsageBook, event: Event[WorkoutLogged | WorkoutStatusChanged]) -> None:
    """Logged or its status changed: the workout as described; a trainer-led one names the
    client's trainer."""
    workout = event.payload
    if workout.trainer_id is not None:
        book.record_trainer_of(user_id=workout.user_id, trainer_id=workout.trainer_id)
    book.record_workout(
        workout_id=workout.workout_id,
        user_id=workout.user_id,
        session_type=workout.session_type,
        status=workout.status,
        changed_by=event.id,
        at=event.occurred_at,
        date=workout.date if isinstance(workout, WorkoutLogged) else None,
    )


def on_balance_changed(book: UsageBook, event: Event[BalanceEvent]) -> None:
    """A ledger event: the balance it left. A deduction or a forfeit names the client's
    trainer: either is a session booked with them, which is what "clients they train"
    means in the contract."""
    entry = event.payload
    if isinstance(entry, SessionCreditDeducted | SessionCreditForfeited):
        book.record_trainer_of(user_id=entry.user_id, trainer_id=entry.trainer_id)
    book.record_credit_balance(user_id=entry.user_id, balance=entry.balance, at=event.occurred_at)


HANDLERS: Handlers[UsageBook] = {
    **dict.fromkeys(WORKOUT_EVENTS, on_workout),
    **dict.fromkeys(BALANCE_EVENTS, on_balance_changed),
}
