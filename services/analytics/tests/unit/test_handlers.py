"""The handler table: which events change usage, and what each passes to the rules."""

from __future__ import annotations

import pytest

from analytics.handlers import HANDLERS
from analytics.rules import KnownWorkout, UsageBook
from contracts.events import (
    Balance,
    CreditDeductionRejected,
    CreditsExpired,
    CreditsGranted,
    CreditsRunningLow,
    GroupSessionCancelled,
    GroupSessionCompleted,
    GroupSessionScheduled,
    PackageExpiringSoon,
    ParticipantJoined,
    ParticipantLeft,
    SessionBooked,
    SessionCancelled,
    SessionCompleted,
    SessionCreditDeducted,
    SessionCreditForfeited,
    SessionCreditRestored,
    SessionNoShow,
    SessionRescheduled,
    SessionStarted,
    SessionType,
    SoloWorkoutCounted,
    WorkoutLogged,
    WorkoutStatus,
    WorkoutStatusChanged,
)
from testkit.events import CLIENT, TRAINER, status_changed

from ..stories import (
    balance,
    day,
    deducted,
    deduction_rejected,
    expired,
    expiring_soon,
    forfeited,
    granted,
    logged,
    restored,
    running_low,
    solo_counted,
)
from .book import apply, event


def test_workouts_every_ledger_event_with_a_balance_and_sessions_are_handled_and_nothing_else() -> (
    None
):
    assert set(HANDLERS) == {
        WorkoutLogged,
        WorkoutStatusChanged,
        CreditsGranted,
        SessionCreditDeducted,
        SessionCreditRestored,
        SessionCreditForfeited,
        CreditsExpired,
        CreditsRunningLow,
        SessionBooked,
        SessionRescheduled,
        SessionCompleted,
        SessionNoShow,
        SessionCancelled,
        GroupSessionScheduled,
        ParticipantJoined,
        ParticipantLeft,
        GroupSessionCompleted,
        GroupSessionCancelled,
    }
    # No balance, no change of usage: the consumer ignores them; a session started changes
    # none of a trainer's figures.
    assert {
        CreditDeductionRejected,
        SoloWorkoutCounted,
        PackageExpiringSoon,
        SessionStarted,
    }.isdisjoint(HANDLERS)


def test_a_logged_workout_is_recorded_with_its_event_id_time_and_date() -> None:
    workout = logged("trainer-led")
    book = apply(UsageBook(), event(workout, "log-1", time=day(3)))
    assert book.workouts[workout.workout_id] == KnownWorkout(
        CLIENT, SessionType.TRAINER_LED, WorkoutStatus.COMPLETED, "log-1", workout.date, TRAINER
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


@pytest.mark.parametrize(
    "entry",
    [
        forfeited(2, balance(10, 2, held=1)),
        expired(3, balance(10, 2, held=1, expired=3)),
        running_low(2, balance(10, 7, held=1)),
    ],
    ids=lambda entry: type(entry).__name__,
)
def test_a_forfeit_an_expiry_and_a_heads_up_each_set_the_balance_they_carry(
    entry: SessionCreditForfeited | CreditsExpired | CreditsRunningLow,
) -> None:
    book = apply(UsageBook(), event(granted(10), time=day(0)), event(entry, time=day(5)))
    usage = book.usages[CLIENT]
    assert usage.usage.credits == entry.balance
    assert (usage.credits_held, usage.credits_expired, usage.as_of) == (
        entry.balance.held,
        entry.balance.expired,
        day(5),
    )


def test_a_deduction_or_a_forfeit_names_the_clients_trainer_and_other_entries_none() -> None:
    others = [granted(10), restored(1, 10, 0), expired(1, balance(10, 0, expired=1))]
    assert apply(UsageBook(), *(event(e) for e in others)).trainer_clients == set()
    assert apply(UsageBook(), event(deducted(1, 10, 1))).trainer_clients == {(TRAINER, CLIENT)}
    assert apply(UsageBook(), event(forfeited(2, balance(10, 1)))).trainer_clients == {
        (TRAINER, CLIENT)
    }


def test_a_rejected_deduction_changes_nothing() -> None:
    book = apply(UsageBook(), event(deduction_rejected(1)))
    assert (book.usages, book.changes) == ({}, {})


def test_a_solo_workout_counted_and_a_package_expiring_soon_change_nothing() -> None:
    book = apply(
        UsageBook(),
        event(solo_counted(logged("solo"), 1)),
        event(expiring_soon(3)),
    )
    assert (book.usages, book.changes, book.trainer_clients) == ({}, {}, set())


def test_a_heads_up_with_the_balance_already_held_changes_nothing() -> None:
    """CreditsRunningLow comes after the entry that crossed the threshold, with its balance."""
    low = balance(10, 8, held=1)
    book = apply(UsageBook(), event(deducted(8, 10, 8, held=1), time=day(3)))
    book.changes.clear()
    apply(book, event(running_low(1, low), time=day(4)))
    assert book.changes == {}
    assert book.usages[CLIENT].as_of == day(3)
    assert book.usages[CLIENT].usage.credits == Balance(
        total=10, used=8, remaining=2, held=1, expired=0, available=1
    )


def test_each_ledger_event_that_moves_credits_is_an_entry_of_the_clients_list() -> None:
    """What each did to the remaining credits, and what it left; a heads-up is no entry."""
    book = apply(
        UsageBook(),
        event(granted(10), "grant", time=day(0)),
        event(deducted(1, 10, 1), "deduct", time=day(1)),
        event(restored(1, 10, 0), "restore", time=day(2)),
        event(forfeited(2, balance(10, 1)), "forfeit", time=day(3)),
        event(running_low(9, balance(10, 1)), "low", time=day(3)),
        event(expired(3, balance(10, 1, expired=3)), "expire", time=day(4)),
        event(deduction_rejected(3), "rejected", time=day(5)),
    )
    assert [
        (e.event_id, e.user_id, e.entry_type, e.change, e.remaining, e.session_id, e.detail)
        for e in book.credit_entries
    ] == [
        ("grant", CLIENT, "CreditsGranted", 10, 10, None, None),
        ("deduct", CLIENT, "SessionCreditDeducted", -1, 9, 1, "workout-logged"),
        ("restore", CLIENT, "SessionCreditRestored", 1, 10, 1, restored(1, 10, 0).reason),
        ("forfeit", CLIENT, "SessionCreditForfeited", -1, 9, 2, "late-cancel"),
        ("expire", CLIENT, "CreditsExpired", -3, 6, None, None),
    ]
    assert [e.occurred_at for e in book.credit_entries] == [day(n) for n in (0, 1, 2, 3, 4)]
