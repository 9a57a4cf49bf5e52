"""What the analytics service does with each event it consumes: one record on the usage
book its batch loaded (`analytics.rules`). CreditDeductionRejected has no handler on
purpose: it carries no balance and changes no usage."""

from __future__ import annotations

from analytics.rules import UsageBook
from contracts.envelope import Event
from contracts.events import (
    CreditsGranted,
    SessionCreditDeducted,
    SessionCreditRestored,
    WorkoutLogged,
    WorkoutStatusChanged,
)
from servicekit.domain import Handlers

BALANCE_EVENTS = (CreditsGranted, SessionCreditDeducted, SessionCreditRestored)
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
    )


def on_balance_changed(
    book: UsageBook,
    event: Event[CreditsGranted | SessionCreditDeducted | SessionCreditRestored],
) -> None:
    """A ledger entry: the balance it left; a deduction names the client's trainer."""
    entry = event.payload
    if isinstance(entry, SessionCreditDeducted):
        book.record_trainer_of(user_id=entry.user_id, trainer_id=entry.trainer_id)
    book.record_credit_balance(user_id=entry.user_id, balance=entry.balance, at=event.occurred_at)


HANDLERS: Handlers[UsageBook] = {
    **dict.fromkeys(WORKOUT_EVENTS, on_workout),
    **dict.fromkeys(BALANCE_EVENTS, on_balance_changed),
}
