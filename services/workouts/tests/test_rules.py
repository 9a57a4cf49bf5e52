"""The workout rules on their own: totals, experience points, the status lifecycle and the
booked-session checks. Pure functions, no I/O."""

from __future__ import annotations

import itertools

import pytest

from contracts.events import Exercise, ExerciseSet, WorkoutStatus
from contracts.sessions import SessionStatus
from workouts.rules import (
    BookedSessionFacts,
    SessionMismatch,
    SessionNotDelivered,
    StatusChangeForbidden,
    Totals,
    check_session_fits,
    check_status_change,
    experience_points,
    furthest_status,
    totals_of,
)

CLIENT, TRAINER, OTHER = 123, 456, 789


def exercise(name: str, *sets: tuple[int, float | None]) -> Exercise:
    return Exercise(
        name=name, sets=[ExerciseSet(reps=reps, weight=weight) for reps, weight in sets]
    )


# --- totals -----------------------------------------------------------------------------


def test_totals_count_sets_add_reps_and_weigh_reps_times_weight() -> None:
    totals = totals_of(
        [
            exercise("Bench press", (10, 60.0), (8, 70.0), (6, 80.0)),
            exercise("Push-ups", (20, None), (15, None)),
        ]
    )
    assert totals == Totals(total_sets=5, total_reps=59, total_weight=10 * 60 + 8 * 70 + 6 * 80)


def test_a_set_without_weight_moves_no_weight_but_counts_its_reps() -> None:
    assert totals_of([exercise("Plank", (1, None))]) == Totals(
        total_sets=1, total_reps=1, total_weight=0.0
    )


def test_fractional_weights_are_weighed_exactly_enough() -> None:
    assert totals_of([exercise("Curl", (3, 12.5), (3, 12.5))]).total_weight == 75.0


def test_a_workout_without_exercises_or_sets_totals_zero() -> None:
    assert totals_of([]) == Totals(0, 0, 0.0)
    assert totals_of([exercise("Warm-up")]) == Totals(0, 0, 0.0)


def test_zero_reps_count_as_a_set_of_nothing() -> None:
    assert totals_of([exercise("Failed attempt", (0, 200.0))]) == Totals(1, 0, 0.0)


# --- experience points ------------------------------------------------------------------


def test_a_completed_workout_earns_ten_plus_a_point_per_set_ten_reps_and_hundred_weight() -> None:
    # 3 sets of 10 at 60: 3 sets, 30 reps, 1800 moved -> 10 + 3 + 3 + 18.
    totals = totals_of([exercise("Squat", (10, 60.0), (10, 60.0), (10, 60.0))])
    assert experience_points(totals, WorkoutStatus.COMPLETED) == 34


def test_experience_points_round_each_share_down() -> None:
    totals = Totals(total_sets=2, total_reps=19, total_weight=199.9)
    assert experience_points(totals, WorkoutStatus.COMPLETED) == 10 + 2 + 1 + 1


def test_completing_an_empty_workout_earns_the_completion_points_only() -> None:
    assert experience_points(Totals(), WorkoutStatus.COMPLETED) == 10


@pytest.mark.parametrize(
    "status",
    [
        WorkoutStatus.PLANNED,
        WorkoutStatus.IN_PROGRESS,
        WorkoutStatus.SKIPPED,
        WorkoutStatus.CANCELLED,
    ],
)
def test_a_workout_not_completed_earns_nothing(status: WorkoutStatus) -> None:
    assert experience_points(Totals(5, 50, 5000.0), status) == 0


# --- the status lifecycle ---------------------------------------------------------------

ALLOWED = {
    ("planned", "in_progress"),
    ("planned", "completed"),
    ("planned", "skipped"),
    ("planned", "cancelled"),
    ("in_progress", "completed"),
    ("in_progress", "cancelled"),
}


@pytest.mark.parametrize(
    ("current", "requested"), list(itertools.product(WorkoutStatus, WorkoutStatus))
)
def test_statuses_only_move_forward(current: WorkoutStatus, requested: WorkoutStatus) -> None:
    if current is requested or (current, requested) in ALLOWED:
        check_status_change(current, requested)
    else:
        with pytest.raises(
            StatusChangeForbidden, match=f"the workout is {current} and cannot become {requested}"
        ):
            check_status_change(current, requested)


def test_a_refused_change_says_where_the_workout_may_go() -> None:
    with pytest.raises(StatusChangeForbidden) as refused:
        check_status_change(WorkoutStatus.IN_PROGRESS, WorkoutStatus.SKIPPED)
    assert str(refused.value) == (
        "the workout is in_progress and cannot become skipped (it may become cancelled, completed)"
    )
    with pytest.raises(StatusChangeForbidden, match=r"\(completed is final\)"):
        check_status_change(WorkoutStatus.COMPLETED, WorkoutStatus.PLANNED)


@pytest.mark.parametrize(
    ("current", "requested"), list(itertools.product(WorkoutStatus, WorkoutStatus))
)
def test_staff_may_also_call_off_a_completed_workout_and_nothing_else(
    current: WorkoutStatus, requested: WorkoutStatus
) -> None:
    correction = (current, requested) == (WorkoutStatus.COMPLETED, WorkoutStatus.CANCELLED)
    if current is requested or (current, requested) in ALLOWED or correction:
        check_status_change(current, requested, by_staff=True)
    else:
        with pytest.raises(StatusChangeForbidden):
            check_status_change(current, requested, by_staff=True)
    if correction:
        with pytest.raises(StatusChangeForbidden, match=r"\(completed is final\)"):
            check_status_change(current, requested)


# --- booked sessions --------------------------------------------------------------------


def known(
    status: SessionStatus = SessionStatus.SCHEDULED, user_id: int = CLIENT
) -> BookedSessionFacts:
    return BookedSessionFacts(session_id=7, user_id=user_id, trainer_id=TRAINER, status=status)


def test_a_session_not_known_yet_is_given_the_benefit_of_the_doubt() -> None:
    check_session_fits(None, user_id=CLIENT, trainer_id=TRAINER)


@pytest.mark.parametrize(
    "status", [SessionStatus.SCHEDULED, SessionStatus.IN_PROGRESS, SessionStatus.COMPLETED]
)
def test_a_workout_fits_its_own_clients_session_with_its_trainer(status: SessionStatus) -> None:
    check_session_fits(known(status), user_id=CLIENT, trainer_id=TRAINER)


def test_a_workout_for_another_clients_session_does_not_fit() -> None:
    with pytest.raises(SessionMismatch) as mismatch:
        check_session_fits(known(user_id=OTHER), user_id=CLIENT, trainer_id=TRAINER)
    assert str(mismatch.value) == (
        f"session 7 is booked for client {OTHER} with trainer {TRAINER}, "
        f"not client {CLIENT} with trainer {TRAINER}"
    )


def test_a_workout_with_another_trainer_does_not_fit() -> None:
    with pytest.raises(SessionMismatch, match=f"not client {CLIENT} with trainer {OTHER}"):
        check_session_fits(known(), user_id=CLIENT, trainer_id=OTHER)


@pytest.mark.parametrize(
    ("status", "reason"),
    [
        (SessionStatus.CANCELLED, "session 7 was cancelled"),
        (SessionStatus.NO_SHOW, "session 7 was a no-show"),
    ],
)
def test_a_session_never_delivered_takes_no_workout(status: SessionStatus, reason: str) -> None:
    with pytest.raises(SessionNotDelivered, match=reason):
        check_session_fits(known(status), user_id=CLIENT, trainer_id=TRAINER)


def test_a_mismatch_is_reported_before_a_cancellation() -> None:
    with pytest.raises(SessionMismatch):
        check_session_fits(
            known(SessionStatus.CANCELLED, user_id=OTHER), user_id=CLIENT, trainer_id=TRAINER
        )


@pytest.mark.parametrize(
    "history",
    [
        ["scheduled", "in_progress", "completed"],
        ["scheduled", "in_progress", "cancelled"],
        ["scheduled", "cancelled"],
        ["scheduled", "no_show"],
    ],
)
def test_a_sessions_story_ends_the_same_in_any_order(history: list[str]) -> None:
    statuses = [SessionStatus(status) for status in history]
    for order in itertools.permutations(statuses):
        seen = order[0]
        for status in order[1:]:
            seen = furthest_status(seen, status)
        assert seen is statuses[-1], order
