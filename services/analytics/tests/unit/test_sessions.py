"""The rules of booked sessions and of the studio's days, pure: what a trainer's figures and
the studio-wide answer are built from."""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import UTC, date, datetime

import pytest

from analytics.rules import (
    CompletedWorkouts,
    Place,
    SessionKind,
    SessionOfAnotherKind,
    SessionStatus,
    SessionUsage,
    UsageBook,
    day_of,
    monday_of,
)
from contracts.events import SessionType, WorkoutStatus

WHEN = datetime(2026, 3, 10, 18, 0, tzinfo=UTC)


def test_every_kind_counts_in_the_total_and_each_share_is_of_it() -> None:
    usage = SessionUsage(CompletedWorkouts(solo=4, trainer_led=2, trainer_assisted=1, group=1))
    assert usage.total == 8
    assert [usage.solo.percentage, usage.trainer_led.percentage] == [50.0, 25.0]
    assert [usage.trainer_assisted.percentage, usage.group.percentage] == [12.5, 12.5]
    # Example 1: only solo and trainer-led, as the spec has it.
    example = SessionUsage(CompletedWorkouts(solo=4, trainer_led=2))
    assert (example.total, example.solo.percentage, example.trainer_led.percentage) == (
        6,
        66.7,
        33.3,
    )
    assert example.group.count == example.trainer_assisted.count == 0


def test_a_session_takes_what_each_event_says_and_keeps_the_rest() -> None:
    book = UsageBook()
    book.record_session(1, date=WHEN)  # rescheduled before anything else was seen
    session = book.record_session(1, kind=SessionKind.GROUP, trainer_id=456)
    assert (session.kind, session.trainer_id, session.date) == (SessionKind.GROUP, 456, WHEN)
    book.record_session(1, status=SessionStatus.COMPLETED)
    assert book.sessions[1].status is SessionStatus.COMPLETED
    assert book.changed_sessions == {1}


def test_the_same_description_again_changes_nothing() -> None:
    book = UsageBook()
    book.record_session(1, kind=SessionKind.ONE_TO_ONE, trainer_id=456, date=WHEN)
    book.changed_sessions.clear()
    book.record_session(1, kind=SessionKind.ONE_TO_ONE, trainer_id=456, date=WHEN)
    assert book.changed_sessions == set()


def test_an_id_is_one_to_one_or_group_never_both() -> None:
    book = UsageBook()
    book.record_session(1, kind=SessionKind.ONE_TO_ONE)
    with pytest.raises(SessionOfAnotherKind, match="session 1 is a one-to-one session here"):
        book.record_session(1, kind=SessionKind.GROUP)


def place_of(book: UsageBook) -> Place:
    return book.places[1, 501]


def test_a_place_no_longer_moves_by_joins_or_leaves_once_the_session_is_over() -> None:
    book = UsageBook()
    session = book.record_session(1, kind=SessionKind.GROUP)
    book.record_place(session, 501, Place.BOOKED)
    book.record_place(session, 501, Place.LEFT)
    book.record_place(session, 501, Place.BOOKED)  # rejoined while open
    assert place_of(book) == Place.BOOKED
    session = book.record_session(1, status=SessionStatus.COMPLETED)
    book.record_place(session, 501, Place.ATTENDED)
    book.record_place(session, 501, Place.BOOKED)  # a late or re-sent join
    book.record_place(session, 501, Place.LEFT)
    assert place_of(book) == Place.ATTENDED


def test_days_are_utc_and_weeks_start_on_monday() -> None:
    assert day_of(datetime.fromisoformat("2026-03-01T00:30:00+01:00")) == date(2026, 2, 28)
    assert monday_of(date(2026, 3, 8)) == date(2026, 3, 2)  # a Sunday
    assert monday_of(date(2026, 3, 2)) == date(2026, 3, 2)


def test_each_workout_event_moves_its_workout_between_days_and_types() -> None:
    book = UsageBook()
    workout = uuid.uuid4()

    def record(status: WorkoutStatus, when: datetime | None = None) -> None:
        book.record_workout(
            workout_id=workout,
            user_id=123,
            session_type=SessionType.GROUP,
            status=status,
            changed_by="e",
            at=WHEN,
            date=when,
        )

    record(WorkoutStatus.COMPLETED, WHEN)
    record(WorkoutStatus.COMPLETED)  # a status change says no date: the known one stays
    assert +book.day_changes == Counter({(date(2026, 3, 10), SessionType.GROUP): 1})
    record(WorkoutStatus.CANCELLED)
    assert +book.day_changes == Counter()
    record(WorkoutStatus.COMPLETED, datetime(2026, 3, 11, tzinfo=UTC))  # logged again, moved
    assert {key: n for key, n in book.day_changes.items() if n} == {
        (date(2026, 3, 11), SessionType.GROUP): 1
    }
