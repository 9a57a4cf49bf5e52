"""The usage book's rules on plain state: what counts, when usage changes and is announced,
its time, who trains whom, and the workout that changes hands."""

from __future__ import annotations

import uuid
from collections import Counter

import pytest

from analytics.rules import (
    ClientUsage,
    KnownWorkout,
    SessionUsage,
    UsageBook,
    UsageNotRecordable,
    WorkoutOfAnotherClient,
)
from contracts.events import Balance, SessionType, SessionUsageUpdated, WorkoutStatus
from servicekit import tracing
from servicekit.domain import RuleBroken
from testkit.events import CLIENT, TRAINER

from ..stories import OTHER_CLIENT, balance, day
from .book import numbered_ids

SOLO, TRAINER_LED = SessionType.SOLO, SessionType.TRAINER_LED
COMPLETED = WorkoutStatus.COMPLETED


def record(
    book: UsageBook,
    workout_id: uuid.UUID,
    kind: SessionType = SOLO,
    status: WorkoutStatus = COMPLETED,
    *,
    user_id: int = CLIENT,
    at: int = 0,
    changed_by: str = "event",
) -> None:
    book.record_workout(
        workout_id=workout_id,
        user_id=user_id,
        session_type=kind,
        status=status,
        changed_by=changed_by,
        at=day(at),
    )


def counts(book: UsageBook, user_id: int = CLIENT) -> tuple[int, int]:
    usage = book.usages[user_id]
    return usage.solo_count, usage.trainer_led_count


def announced(book: UsageBook) -> list[SessionUsageUpdated]:
    payloads = [a.payload for a in book.announcements(numbered_ids())]
    assert all(isinstance(p, SessionUsageUpdated) for p in payloads)
    return payloads  # type: ignore[return-value]  # checked just above


def test_a_completed_workout_counts_under_its_type_and_is_announced() -> None:
    book = UsageBook()
    record(book, uuid.uuid4(), TRAINER_LED, at=2)
    assert counts(book) == (0, 1)
    [usage] = announced(book)
    assert usage.to_json_dict() == {
        "userId": CLIENT,
        "total": 1,
        "solo": {"count": 0, "percentage": 0.0},
        "trainerLed": {"count": 1, "percentage": 100.0},
        "trainerAssisted": {"count": 0, "percentage": 0.0},
        "group": {"count": 0, "percentage": 0.0},
        "credits": {"total": 0, "used": 0, "remaining": 0, "held": 0, "expired": 0, "available": 0},
        "asOf": "2026-01-07T09:00:00Z",
    }
    assert book.usages[CLIENT].changed


@pytest.mark.parametrize(
    "status",
    [
        WorkoutStatus.PLANNED,
        WorkoutStatus.IN_PROGRESS,
        WorkoutStatus.SKIPPED,
        WorkoutStatus.CANCELLED,
    ],
)
def test_a_workout_not_completed_is_kept_but_not_counted_nor_announced(
    status: WorkoutStatus,
) -> None:
    book = UsageBook()
    workout_id = uuid.uuid4()
    record(book, workout_id, TRAINER_LED, status)
    assert counts(book) == (0, 0)
    assert book.changes == {}
    assert not book.usages[CLIENT].changed
    assert book.workouts[workout_id] == KnownWorkout(CLIENT, TRAINER_LED, status, "event")
    assert book.changed_workouts == {workout_id}


def test_a_planned_workout_counts_once_it_is_completed() -> None:
    book = UsageBook()
    workout_id = uuid.uuid4()
    record(book, workout_id, TRAINER_LED, WorkoutStatus.PLANNED)
    record(book, workout_id, TRAINER_LED, WorkoutStatus.IN_PROGRESS)
    assert counts(book) == (0, 0)
    record(book, workout_id, TRAINER_LED, COMPLETED)
    assert counts(book) == (0, 1)


@pytest.mark.parametrize("undone", [WorkoutStatus.SKIPPED, WorkoutStatus.CANCELLED])
def test_a_completed_workout_leaves_the_counts_when_undone_and_returns_when_redone(
    undone: WorkoutStatus,
) -> None:
    book = UsageBook()
    solo = uuid.uuid4()
    record(book, solo)
    record(book, uuid.uuid4(), TRAINER_LED)
    record(book, solo, SOLO, undone)
    assert counts(book) == (0, 1)
    record(book, solo)
    assert counts(book) == (1, 1)


def test_a_workout_described_again_is_updated_not_counted_twice() -> None:
    """Duplicates by business key (the workout id) under new event ids: no change."""
    book = UsageBook()
    workout_id = uuid.uuid4()
    record(book, workout_id, changed_by="first", at=1)
    first = book.changes[CLIENT]
    record(book, workout_id, changed_by="again", at=3)
    assert counts(book) == (1, 0)
    assert book.changes[CLIENT] is first  # nothing changed: nothing new to announce
    assert book.usages[CLIENT].as_of == day(1)
    assert book.workouts[workout_id].changed_by == "again"


def test_a_workout_that_changes_type_moves_between_the_counts() -> None:
    book = UsageBook()
    workout_id = uuid.uuid4()
    record(book, workout_id, SOLO)
    record(book, workout_id, TRAINER_LED)
    assert counts(book) == (0, 1)


def test_a_workout_loaded_from_the_store_is_uncounted_when_it_is_cancelled() -> None:
    """A workout the store knows (completed, counted in the loaded counts)."""
    workout_id = uuid.uuid4()
    book = UsageBook()
    book.usages[CLIENT] = ClientUsage(CLIENT, solo_count=2, as_of=day(1))
    book.completed[CLIENT] = Counter({SOLO: 2})
    book.workouts[workout_id] = KnownWorkout(CLIENT, SOLO, COMPLETED, "logged")
    record(book, workout_id, SOLO, WorkoutStatus.CANCELLED, at=4)
    assert counts(book) == (1, 0)
    assert book.usages[CLIENT].as_of == day(4)


def test_a_status_change_of_a_workout_never_seen_counts_it_from_its_own_fields() -> None:
    book = UsageBook()
    record(book, uuid.uuid4(), TRAINER_LED, COMPLETED)
    assert counts(book) == (0, 1)


def test_a_workout_that_changes_hands_is_refused_with_the_reason() -> None:
    book = UsageBook()
    workout_id = uuid.uuid4()
    record(book, workout_id)
    before = (counts(book), dict(book.changes))
    with pytest.raises(WorkoutOfAnotherClient) as refused:
        record(book, workout_id, user_id=OTHER_CLIENT)
    assert refused.value.reason == (
        f"workout {workout_id} belongs to client {CLIENT}, not {OTHER_CLIENT}"
    )
    assert str(refused.value) == refused.value.reason
    assert refused.value.kind == "rejected"
    assert isinstance(refused.value, UsageNotRecordable)
    assert isinstance(refused.value, RuleBroken)
    assert (counts(book), dict(book.changes)) == before
    assert OTHER_CLIENT not in book.usages


def test_the_credit_balance_is_the_latest_recorded() -> None:
    book = UsageBook()
    book.record_credit_balance(user_id=CLIENT, balance=balance(10, 0), at=day(0))
    book.record_credit_balance(user_id=CLIENT, balance=balance(10, 2), at=day(1))
    book.record_credit_balance(user_id=CLIENT, balance=balance(15, 1), at=day(2))
    usage = book.usages[CLIENT]
    assert (usage.credits_total, usage.credits_used) == (15, 1)
    assert usage.usage.credits == Balance(total=15, used=1, remaining=14)


def test_held_and_expired_credits_flow_into_the_usage_and_its_announcement() -> None:
    book = UsageBook()
    book.record_credit_balance(user_id=CLIENT, balance=balance(10, 2, held=1, expired=3), at=day(8))
    stored = book.usages[CLIENT]
    kept = (stored.credits_total, stored.credits_used, stored.credits_held, stored.credits_expired)
    assert kept == (10, 2, 1, 3)
    assert stored.usage.credits == Balance(
        total=10, used=2, remaining=5, held=1, expired=3, available=4
    )
    [announcement] = announced(book)
    assert announcement.to_json_dict()["credits"] == {
        "total": 10,
        "used": 2,
        "remaining": 5,
        "held": 1,
        "expired": 3,
        "available": 4,
    }


@pytest.mark.parametrize(
    "changed", [balance(10, 2, held=1), balance(10, 2, expired=1)], ids=["held", "expired"]
)
def test_a_balance_that_differs_only_in_held_or_expired_is_a_change(changed: Balance) -> None:
    book = UsageBook()
    book.usages[CLIENT] = ClientUsage(CLIENT, credits_total=10, credits_used=2, as_of=day(0))
    book.record_credit_balance(user_id=CLIENT, balance=changed, at=day(3))
    assert book.usages[CLIENT].usage.credits == changed
    assert [a.credits for a in announced(book)] == [changed]


def test_the_latest_balance_replaces_held_and_expired_as_well() -> None:
    """The same rule as total and used: the latest ledger event's figures, all of them."""
    book = UsageBook()
    book.record_credit_balance(user_id=CLIENT, balance=balance(10, 1, held=2, expired=3), at=day(1))
    book.record_credit_balance(user_id=CLIENT, balance=balance(15, 2), at=day(2))
    assert book.usages[CLIENT].usage.credits == Balance(total=15, used=2, remaining=13)
    assert (book.usages[CLIENT].credits_held, book.usages[CLIENT].credits_expired) == (0, 0)


def test_held_and_expired_loaded_from_the_store_are_kept_by_a_workout() -> None:
    book = UsageBook()
    book.usages[CLIENT] = ClientUsage(
        CLIENT, credits_total=10, credits_used=2, credits_held=1, credits_expired=3, as_of=day(0)
    )
    record(book, uuid.uuid4(), at=1)
    [announcement] = announced(book)
    assert announcement.credits == balance(10, 2, held=1, expired=3)
    assert announcement.total == 1


def test_a_balance_below_zero_is_kept_as_it_is() -> None:
    book = UsageBook()
    book.record_credit_balance(user_id=CLIENT, balance=balance(0, 1), at=day(0))
    assert book.usages[CLIENT].usage.credits.remaining == -1
    assert announced(book)[0].credits.remaining == -1


def test_the_same_balance_again_changes_nothing() -> None:
    book = UsageBook()
    book.usages[CLIENT] = ClientUsage(CLIENT, credits_total=10, as_of=day(0))
    book.record_credit_balance(user_id=CLIENT, balance=balance(10, 0), at=day(3))
    assert book.changes == {}
    assert not book.usages[CLIENT].changed
    assert book.usages[CLIENT].as_of == day(0)


def test_as_of_is_the_time_of_the_change() -> None:
    book = UsageBook()
    book.record_credit_balance(user_id=CLIENT, balance=balance(10, 0), at=day(2))
    assert announced(book)[0].as_of == day(2)


def test_as_of_never_moves_back_for_an_older_change_applied_later() -> None:
    book = UsageBook()
    record(book, uuid.uuid4(), at=5)
    book.record_credit_balance(user_id=CLIENT, balance=balance(10, 0), at=day(1))
    [usage] = announced(book)
    assert (usage.credits.total, usage.total, usage.as_of) == (10, 1, day(5))


def test_as_of_moves_on_from_what_the_store_held() -> None:
    book = UsageBook()
    book.usages[CLIENT] = ClientUsage(CLIENT, credits_total=10, as_of=day(3))
    book.record_credit_balance(user_id=CLIENT, balance=balance(10, 1), at=day(2))
    assert book.usages[CLIENT].as_of == day(3)
    book.record_credit_balance(user_id=CLIENT, balance=balance(10, 2), at=day(4))
    assert book.usages[CLIENT].as_of == day(4)


def test_a_batch_announces_each_client_once_as_it_left_them() -> None:
    book = UsageBook()
    book.record_credit_balance(user_id=CLIENT, balance=balance(10, 0), at=day(1))
    record(book, uuid.uuid4(), user_id=OTHER_CLIENT, at=2)
    record(book, uuid.uuid4(), TRAINER_LED, at=3)
    assert list(book.changes) == [CLIENT, OTHER_CLIENT]  # in the order of first change
    mine, other = announced(book)
    assert (mine.user_id, mine.total, mine.credits.total, mine.as_of) == (CLIENT, 1, 10, day(3))
    assert (other.user_id, other.total) == (OTHER_CLIENT, 1)


def test_each_announcement_gets_a_fresh_id() -> None:
    book = UsageBook()
    record(book, uuid.uuid4())
    record(book, uuid.uuid4(), user_id=OTHER_CLIENT)
    new_id = numbered_ids()
    first = [a.event_id for a in book.announcements(new_id)]
    assert first == ["announcement-1", "announcement-2"]
    assert [a.event_id for a in book.announcements(new_id)] == ["announcement-3", "announcement-4"]


def test_the_announcement_keeps_the_trace_context_of_the_last_change() -> None:
    book = UsageBook()
    first, last = (tracing.from_request({}) for _ in range(2))
    with tracing.bound(first):
        record(book, uuid.uuid4(), at=1)
    with tracing.bound(last):
        record(book, uuid.uuid4(), at=2)
    [announcement] = book.announcements(numbered_ids())
    assert announcement.context is last
    assert isinstance(announcement.payload, SessionUsageUpdated)
    assert announcement.payload.as_of == day(2)


def test_the_trainer_of_a_client_is_remembered_once() -> None:
    book = UsageBook()
    book.record_trainer_of(user_id=CLIENT, trainer_id=TRAINER)
    book.record_trainer_of(user_id=CLIENT, trainer_id=TRAINER)
    assert book.trainer_clients == {(TRAINER, CLIENT)}


def test_a_client_unknown_to_the_store_starts_with_nothing() -> None:
    book = UsageBook()
    assert book.client(CLIENT).usage == SessionUsage()
    assert book.client(CLIENT) is book.usages[CLIENT]
