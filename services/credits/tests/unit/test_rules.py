"""The credit ledger's rules (`credits.rules`) through its handler table, on plain state: no
database, no broker. One test per rule of the README's "Credits" section at least."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from contracts import events
from contracts.envelope import Event, build_event
from contracts.sessions import SessionStatus
from credits.handlers import HANDLERS
from credits.rules import (
    STAFF_GRANT,
    BookedForSomeoneElse,
    EntryKind,
    Ledger,
    Place,
    deduction_id,
    purchase_grant_id,
    rejection_id,
    restoration_id,
    withdrawal_id,
)
from testkit.events import CLIENT, TRAINER, booked, moved, purchase, status_changed, workout

NOW = datetime(2026, 1, 14, 10, 0, tzinfo=UTC)
OTHER = 789


def called_off(logged: events.WorkoutLogged) -> events.WorkoutStatusChanged:
    return status_changed(logged, "cancelled", previous="planned")


def event(payload: events.EventPayload, event_id: str | None = None) -> Event[Any]:
    return Event(build_event(payload, source="/tests", event_id=event_id, time=NOW), payload)


def apply(ledger: Ledger, *payloads: events.EventPayload) -> Ledger:
    for payload in payloads:
        HANDLERS[type(payload)](ledger, event(payload))
    return ledger


def announced(ledger: Ledger, kind: type[events.EventPayload]) -> list[Any]:
    return [a.payload for a in ledger.announced if isinstance(a.payload, kind)]


def remaining(ledger: Ledger, user_id: int = CLIENT) -> int:
    return ledger.balance_of(user_id).remaining


def test_a_purchase_grants_its_sessions_once_whatever_the_event_id() -> None:
    ledger = apply(Ledger(), purchase(), purchase())
    assert remaining(ledger) == 10
    [granted] = announced(ledger, events.CreditsGranted)
    assert (granted.amount, granted.purchase_id, granted.balance.remaining) == (10, "order-1", 10)
    assert list(ledger.entries) == [purchase_grant_id("order-1")]


def test_two_purchases_grant_both() -> None:
    ledger = apply(Ledger(), purchase(5, "a"), purchase(3, "b"))
    assert ledger.balance_of(CLIENT).total == 8


def test_a_staff_grant_counts_once_per_key_and_names_no_cause() -> None:
    ledger = Ledger()
    for _ in range(2):
        ledger.grant_by_staff(user_id=CLIENT, amount=2, reason="goodwill", grant_key="k", at=NOW)
    assert remaining(ledger) == 2
    [granted] = announced(ledger, events.CreditsGranted)
    assert granted.caused_by is None
    [entry] = ledger.entries.values()
    assert entry.row is not None
    assert entry.row["caused_by"] == STAFF_GRANT


def test_a_delivered_trainer_led_workout_deducts_once_for_its_cause() -> None:
    logged = workout(1)
    ledger = apply(Ledger(), purchase(), booked(1), logged)
    assert remaining(ledger) == 9
    [deducted] = announced(ledger, events.SessionCreditDeducted)
    assert (deducted.session_id, deducted.workout_id, deducted.cause) == (
        1,
        logged.workout_id,
        events.WORKOUT_LOGGED,
    )
    assert deducted.balance.remaining == 9


def test_a_workout_in_progress_deducts_too() -> None:
    assert remaining(apply(Ledger(), purchase(), booked(1), workout(1, status="in_progress"))) == 9


def test_a_completed_session_deducts_with_its_own_cause() -> None:
    ledger = apply(Ledger(), purchase(), booked(1), moved(events.SessionCompleted, 1))
    [deducted] = announced(ledger, events.SessionCreditDeducted)
    assert (deducted.cause, deducted.workout_id) == (events.SESSION_COMPLETED, None)


def test_every_cause_of_one_session_deducts_once() -> None:
    ledger = apply(
        Ledger(),
        purchase(),
        booked(1),
        moved(events.SessionStarted, 1),
        workout(1, status="in_progress"),
        workout(1),
        moved(events.SessionCompleted, 1),
        workout(1),
    )
    assert remaining(ledger) == 9
    assert len(announced(ledger, events.SessionCreditDeducted)) == 1
    assert [e.row["kind"] for e in ledger.entries.values() if e.row] == ["grant", "deduction"]


def test_solo_workouts_never_deduct() -> None:
    ledger = apply(Ledger(), purchase(), workout(None), workout(None))
    assert remaining(ledger) == 10
    assert ledger.announced[1:] == []


@pytest.mark.parametrize("status", ["planned", "skipped", "cancelled"])
def test_a_workout_not_delivered_never_deducts(status: str) -> None:
    ledger = apply(Ledger(), purchase(), booked(1), workout(1, status=status))
    assert remaining(ledger) == 10


@pytest.mark.parametrize("ending", [events.SessionCancelled, events.SessionNoShow])
def test_an_undelivered_session_rejects_its_deduction_with_the_reason(
    ending: type[events.SessionStatusEvent],
) -> None:
    logged = workout(1)
    ledger = apply(Ledger(), purchase(), booked(1), moved(ending, 1), logged)
    assert remaining(ledger) == 10
    [rejected] = announced(ledger, events.CreditDeductionRejected)
    status = SessionStatus.CANCELLED if ending is events.SessionCancelled else SessionStatus.NO_SHOW
    assert rejected.reason == f"session 1 is {status}"
    assert rejected.workout_id == logged.workout_id


def test_a_workout_for_another_clients_session_is_rejected_with_the_reason() -> None:
    ledger = apply(Ledger(), booked(1), workout(1, user_id=OTHER))
    [rejected] = announced(ledger, events.CreditDeductionRejected)
    assert rejected.reason == (
        f"session 1 is booked for client {CLIENT} with trainer {TRAINER}, "
        f"not client {OTHER} with trainer {TRAINER}"
    )
    assert remaining(ledger, OTHER) == 0


def test_one_event_is_rejected_once_whatever_its_copies() -> None:
    ledger = apply(Ledger(), booked(1, user_id=OTHER))
    copy = event(workout(1))
    HANDLERS[events.WorkoutLogged](ledger, copy)
    HANDLERS[events.WorkoutLogged](ledger, copy)
    assert len(announced(ledger, events.CreditDeductionRejected)) == 1
    assert ledger.unrecorded == {str(rejection_id(copy.id))}


@pytest.mark.parametrize(
    "naming_someone_else",
    [
        booked(1, user_id=OTHER),
        booked(1, trainer_id=OTHER),
        moved(events.SessionCompleted, 1, OTHER),
    ],
)
def test_a_session_event_naming_someone_else_is_refused(
    naming_someone_else: events.EventPayload,
) -> None:
    ledger = apply(Ledger(), booked(1))
    with pytest.raises(BookedForSomeoneElse, match="session 1 is booked for client 123") as refused:
        apply(ledger, naming_someone_else)
    assert refused.value.kind == "rejected"


def test_a_cancellation_after_the_deduction_restores_the_credit_once() -> None:
    ledger = apply(
        Ledger(),
        purchase(),
        booked(1),
        workout(1),
        moved(events.SessionCancelled, 1),
        moved(events.SessionNoShow, 1),
        moved(events.SessionCancelled, 1),
    )
    assert remaining(ledger) == 10
    [restored] = announced(ledger, events.SessionCreditRestored)
    assert (restored.reason, restored.balance.remaining) == ("session cancelled", 10)
    assert restoration_id(Place(1)) in ledger.entries


def test_a_no_show_after_the_deduction_restores_it_too() -> None:
    ledger = apply(Ledger(), purchase(), booked(1), workout(1), moved(events.SessionNoShow, 1))
    [restored] = announced(ledger, events.SessionCreditRestored)
    assert restored.reason == "session no_show"


def test_a_cancellation_without_a_deduction_restores_nothing() -> None:
    ledger = apply(Ledger(), purchase(), booked(1), moved(events.SessionCancelled, 1))
    assert announced(ledger, events.SessionCreditRestored) == []
    assert remaining(ledger) == 10


def test_without_credits_left_the_deduction_is_recorded_and_remaining_goes_negative() -> None:
    ledger = apply(Ledger(), purchase(1), *(booked(s) for s in (1, 2)), workout(1), workout(2))
    assert ledger.balance_of(CLIENT) == events.Balance(total=1, used=2, remaining=-1)
    assert [d.balance.remaining for d in announced(ledger, events.SessionCreditDeducted)] == [0, -1]


def test_a_workout_before_its_booking_is_parked_then_settled_by_it() -> None:
    ledger = apply(Ledger(), purchase(), workout(7))
    assert [p.request.session_id for p in ledger.parked[Place(7)]] == [7]
    assert remaining(ledger) == 10
    apply(ledger, booked(7))
    assert Place(7) not in ledger.parked
    assert remaining(ledger) == 9


def test_a_parked_deduction_for_someone_elses_session_is_rejected_when_it_is_booked() -> None:
    ledger = apply(Ledger(), workout(7, user_id=OTHER), booked(7))
    [rejected] = announced(ledger, events.CreditDeductionRejected)
    assert "booked for client 123" in rejected.reason
    assert deduction_id(Place(7)) not in ledger.entries


def test_a_workout_called_off_while_parked_is_withdrawn_and_never_charged() -> None:
    logged = workout(7)
    ledger = apply(Ledger(), purchase(), logged, called_off(logged), booked(7), workout(7))
    [rejected] = announced(ledger, events.CreditDeductionRejected)
    assert (
        rejected.reason == f"workout {logged.workout_id} was cancelled before session 7 was booked"
    )
    assert ledger.new_withdrawals == {logged.workout_id: 7}
    # Another workout for the session still deducts: only the withdrawn one never does.
    assert remaining(ledger) == 9
    [deducted] = announced(ledger, events.SessionCreditDeducted)
    assert deducted.workout_id != logged.workout_id


def test_the_withdrawn_workout_logged_again_never_deducts() -> None:
    logged = workout(7)
    ledger = apply(Ledger(), purchase(), logged, called_off(logged), booked(7), logged)
    assert remaining(ledger) == 10


def test_calling_off_a_workout_already_charged_gives_nothing_back() -> None:
    logged = workout(1)
    ledger = apply(Ledger(), purchase(), booked(1), logged, called_off(logged))
    assert remaining(ledger) == 9
    assert announced(ledger, events.CreditDeductionRejected) == []


def test_an_announcement_read_back_is_restored_as_announced_and_not_announced_again() -> None:
    live = apply(Ledger(), purchase(), booked(1), workout(1))
    rebuilt = Ledger()
    for decided in live.announced:
        HANDLERS[type(decided.payload)](rebuilt, event(decided.payload, decided.event_id))
    assert rebuilt.announced == []
    assert rebuilt.balance_of(CLIENT) == live.balance_of(CLIENT)
    assert {id: e.row for id, e in rebuilt.entries.items()} == {
        id: e.row for id, e in live.entries.items()
    }
    # Its inputs after it change nothing: the deduction's key is taken.
    apply(rebuilt, purchase(), booked(1), moved(events.SessionCompleted, 1))
    assert rebuilt.balance_of(CLIENT) == live.balance_of(CLIENT)


def test_a_withdrawal_read_back_keeps_its_workout_from_ever_deducting() -> None:
    logged = workout(7)
    live = apply(Ledger(), logged, called_off(logged))
    [withdrawal] = live.announced
    assert withdrawal.event_id == str(withdrawal_id(logged.workout_id))
    rebuilt = Ledger()
    HANDLERS[events.CreditDeductionRejected](
        rebuilt, event(withdrawal.payload, withdrawal.event_id)
    )
    apply(rebuilt, purchase(), booked(7), logged)
    assert remaining(rebuilt) == 10


def test_an_ordinary_rejection_read_back_is_no_entry() -> None:
    live = apply(Ledger(), booked(1, user_id=OTHER), workout(1))
    [rejection] = live.announced
    rebuilt = Ledger()
    HANDLERS[events.CreditDeductionRejected](rebuilt, event(rejection.payload, rejection.event_id))
    assert rebuilt.entries == {}
    assert rebuilt.withdrawn == set()


def test_balance_is_the_sum_of_the_entries() -> None:
    ledger = apply(
        Ledger(),
        purchase(3),
        booked(1),
        booked(2),
        workout(1),
        workout(2),
        moved(events.SessionNoShow, 2),
    )
    rows = [e.row for e in ledger.entries.values() if e.row]
    assert sum(row["amount"] for row in rows) == remaining(ledger) == 2
    kinds = [row["kind"] for row in rows]
    assert kinds == [
        EntryKind.GRANT,
        EntryKind.DEDUCTION,
        EntryKind.DEDUCTION,
        EntryKind.RESTORATION,
    ]
