"""The handler table: which events change usage, and what each passes to the rules."""

from __future__ import annotations

from analytics.handlers import HANDLERS
from analytics.rules import KnownWorkout, UsageBook
from contracts.events import (
    CreditDeductionRejected,
    CreditsGranted,
    SessionCreditDeducted,
    SessionCreditRestored,
    SessionType,
    WorkoutLogged,
    WorkoutStatus,
    WorkoutStatusChanged,
)
from testkit.events import CLIENT, TRAINER, status_changed

from ..stories import day, deducted, deduction_rejected, granted, logged, restored
from .book import apply, event


def test_workouts_and_ledger_balances_are_handled_and_nothing_else() -> None:
    assert set(HANDLERS) == {
        WorkoutLogged,
        WorkoutStatusChanged,
        CreditsGranted,
        SessionCreditDeducted,
        SessionCreditRestored,
    }
    assert CreditDeductionRejected not in HANDLERS  # no balance, no change of usage


def test_a_logged_workout_is_recorded_with_its_event_id_and_time() -> None:
    workout = logged("trainer-led")
    book = apply(UsageBook(), event(workout, "log-1", time=day(3)))
    assert book.workouts[workout.workout_id] == KnownWorkout(
        CLIENT, SessionType.TRAINER_LED, WorkoutStatus.COMPLETED, "log-1"
    )
    assert book.usages[CLIENT].as_of == day(3)
    assert book.trainer_clients == {(TRAINER, CLIENT)}


def test_a_status_change_is_recorded_like_a_logged_workout() -> None:
    workout = logged("solo", "planned")
    book = apply(
        UsageBook(),
        event(workout, "log", time=day(1)),
        event(status_changed(workout, "completed"), "done", time=day(2)),
    )
    assert book.workouts[workout.workout_id].changed_by == "done"
    assert (book.usages[CLIENT].solo_count, book.usages[CLIENT].as_of) == (1, day(2))


def test_a_solo_workout_names_no_trainer() -> None:
    assert apply(UsageBook(), event(logged("solo"))).trainer_clients == set()


def test_each_ledger_entry_sets_the_balance_it_left() -> None:
    book = UsageBook()
    apply(book, event(granted(10), time=day(0)))
    assert book.usages[CLIENT].credits_total == 10
    apply(book, event(deducted(1, 10, 1), time=day(1)))
    assert book.usages[CLIENT].credits_used == 1
    apply(book, event(restored(1, 10, 0), time=day(2)))
    assert (book.usages[CLIENT].credits_used, book.usages[CLIENT].as_of) == (0, day(2))


def test_a_deduction_names_the_clients_trainer_and_a_grant_or_restoration_none() -> None:
    assert apply(UsageBook(), event(granted(10)), event(restored(1, 10, 0))).trainer_clients == (
        set()
    )
    assert apply(UsageBook(), event(deducted(1, 10, 1))).trainer_clients == {(TRAINER, CLIENT)}


def test_a_rejected_deduction_changes_nothing() -> None:
    book = apply(UsageBook(), event(deduction_rejected(1)))
    assert (book.usages, book.changes) == ({}, {})
