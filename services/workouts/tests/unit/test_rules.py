"""The workout rules on their own: totals, experience points, the status lifecycle, the
booked-session and group-session checks and the workout a request logs. Pure functions, no
I/O."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from contracts import events
from contracts.sessions import STATUS_AFTER, SessionStatus
from servicekit.domain import RuleBroken
from workouts import rules

from ..groups import (
    GROUP,
    JOINED_AT,
    LEFT_AT,
    REJOINED_AT,
    called_off,
    completed,
    joined,
    left,
    scheduled,
)

CLIENT, TRAINER, OTHER = 123, 456, 789
AT = datetime(2026, 2, 1, 18, 30, tzinfo=UTC)
A, B = uuid.UUID(int=1), uuid.UUID(int=2)


def exercise(name: str, *sets: tuple[int, float | None]) -> events.Exercise:
    return events.Exercise(
        name=name, sets=[events.ExerciseSet(reps=reps, weight=weight) for reps, weight in sets]
    )


# --- totals -----------------------------------------------------------------------------


def test_totals_count_sets_add_reps_and_weigh_reps_times_weight() -> None:
    totals = rules.totals_of(
        [
            exercise("Bench press", (10, 60.0), (8, 70.0), (6, 80.0)),
            exercise("Push-ups", (20, None), (15, None)),
        ]
    )
    assert totals == rules.Totals(
        total_sets=5, total_reps=59, total_weight=10 * 60 + 8 * 70 + 6 * 80
    )


def test_a_set_without_weight_moves_no_weight_but_counts_its_reps() -> None:
    assert rules.totals_of([exercise("Plank", (1, None))]) == rules.Totals(
        total_sets=1, total_reps=1, total_weight=0.0
    )


def test_fractional_weights_are_weighed_exactly_enough() -> None:
    assert rules.totals_of([exercise("Curl", (3, 12.5), (3, 12.5))]).total_weight == 75.0


def test_a_workout_without_exercises_or_sets_totals_zero() -> None:
    assert rules.totals_of([]) == rules.Totals(0, 0, 0.0)
    assert rules.totals_of([exercise("Warm-up")]) == rules.Totals(0, 0, 0.0)


def test_zero_reps_count_as_a_set_of_nothing() -> None:
    assert rules.totals_of([exercise("Failed attempt", (0, 200.0))]) == rules.Totals(1, 0, 0.0)


# --- experience points ------------------------------------------------------------------


def test_a_completed_workout_earns_ten_plus_a_point_per_set_ten_reps_and_hundred_weight() -> None:
    # 3 sets of 10 at 60: 3 sets, 30 reps, 1800 moved -> 10 + 3 + 3 + 18.
    totals = rules.totals_of([exercise("Squat", (10, 60.0), (10, 60.0), (10, 60.0))])
    assert rules.experience_points(totals, events.WorkoutStatus.COMPLETED) == 34


def test_experience_points_round_each_share_down() -> None:
    totals = rules.Totals(total_sets=2, total_reps=19, total_weight=199.9)
    assert rules.experience_points(totals, events.WorkoutStatus.COMPLETED) == 10 + 2 + 1 + 1


def test_completing_an_empty_workout_earns_the_completion_points_only() -> None:
    assert rules.experience_points(rules.Totals(), events.WorkoutStatus.COMPLETED) == 10


@pytest.mark.parametrize(
    "status",
    [
        events.WorkoutStatus.PLANNED,
        events.WorkoutStatus.IN_PROGRESS,
        events.WorkoutStatus.SKIPPED,
        events.WorkoutStatus.CANCELLED,
    ],
)
def test_a_workout_not_completed_earns_nothing(status: events.WorkoutStatus) -> None:
    assert rules.experience_points(rules.Totals(5, 50, 5000.0), status) == 0


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
    ("current", "requested"), list(itertools.product(events.WorkoutStatus, events.WorkoutStatus))
)
def test_statuses_only_move_forward(
    current: events.WorkoutStatus, requested: events.WorkoutStatus
) -> None:
    if current is requested or (current, requested) in ALLOWED:
        rules.check_status_change(current, requested)
    else:
        with pytest.raises(
            rules.StatusChangeForbidden,
            match=f"the workout is {current} and cannot become {requested}",
        ):
            rules.check_status_change(current, requested)


def test_a_refused_change_says_where_the_workout_may_go() -> None:
    with pytest.raises(rules.StatusChangeForbidden) as refused:
        rules.check_status_change(events.WorkoutStatus.IN_PROGRESS, events.WorkoutStatus.SKIPPED)
    assert str(refused.value) == (
        "the workout is in_progress and cannot become skipped (it may become cancelled, completed)"
    )
    with pytest.raises(rules.StatusChangeForbidden, match=r"\(completed is final\)"):
        rules.check_status_change(events.WorkoutStatus.COMPLETED, events.WorkoutStatus.PLANNED)


@pytest.mark.parametrize(
    ("current", "requested"), list(itertools.product(events.WorkoutStatus, events.WorkoutStatus))
)
def test_staff_may_also_call_off_a_completed_workout_and_nothing_else(
    current: events.WorkoutStatus, requested: events.WorkoutStatus
) -> None:
    correction = (current, requested) == (
        events.WorkoutStatus.COMPLETED,
        events.WorkoutStatus.CANCELLED,
    )
    if current is requested or (current, requested) in ALLOWED or correction:
        rules.check_status_change(current, requested, by_staff=True)
    else:
        with pytest.raises(rules.StatusChangeForbidden):
            rules.check_status_change(current, requested, by_staff=True)
    if correction:
        with pytest.raises(rules.StatusChangeForbidden, match=r"\(completed is final\)"):
            rules.check_status_change(current, requested)


# --- booked sessions --------------------------------------------------------------------

Place = rules.PlaceStatus
JOINED = rules.Place(Place.JOINED, JOINED_AT)
LEFT = rules.Place(Place.LEFT, LEFT_AT)
REJOINED = rules.Place(Place.JOINED, REJOINED_AT)
ATTENDED, NO_SHOW = rules.Place(Place.ATTENDED), rules.Place(Place.NO_SHOW)
CANCELLED = rules.Place(Place.CANCELLED)


def known(
    status: SessionStatus = SessionStatus.SCHEDULED, user_id: int = CLIENT
) -> rules.BookedSessionFacts:
    return rules.BookedSessionFacts(
        session_id=7, user_id=user_id, trainer_id=TRAINER, status=status
    )


def test_a_session_not_known_yet_is_given_the_benefit_of_the_doubt() -> None:
    rules.check_session_fits(None, user_id=CLIENT, trainer_id=TRAINER)


@pytest.mark.parametrize(
    "status", [SessionStatus.SCHEDULED, SessionStatus.IN_PROGRESS, SessionStatus.COMPLETED]
)
def test_a_workout_fits_its_own_clients_session_with_its_trainer(status: SessionStatus) -> None:
    rules.check_session_fits(known(status), user_id=CLIENT, trainer_id=TRAINER)


def test_a_workout_for_another_clients_session_does_not_fit() -> None:
    with pytest.raises(rules.SessionMismatch) as mismatch:
        rules.check_session_fits(known(user_id=OTHER), user_id=CLIENT, trainer_id=TRAINER)
    assert str(mismatch.value) == (
        f"session 7 is booked for client {OTHER} with trainer {TRAINER}, "
        f"not client {CLIENT} with trainer {TRAINER}"
    )


def test_a_workout_with_another_trainer_does_not_fit() -> None:
    with pytest.raises(rules.SessionMismatch, match=f"not client {CLIENT} with trainer {OTHER}"):
        rules.check_session_fits(known(), user_id=CLIENT, trainer_id=OTHER)


@pytest.mark.parametrize(
    ("status", "reason"),
    [
        (SessionStatus.CANCELLED, "session 7 was cancelled"),
        (SessionStatus.NO_SHOW, "session 7 was a no-show"),
    ],
)
def test_a_session_never_delivered_takes_no_workout(status: SessionStatus, reason: str) -> None:
    with pytest.raises(rules.SessionNotDelivered, match=reason):
        rules.check_session_fits(known(status), user_id=CLIENT, trainer_id=TRAINER)


def test_a_mismatch_is_reported_before_a_cancellation() -> None:
    with pytest.raises(rules.SessionMismatch):
        rules.check_session_fits(
            known(SessionStatus.CANCELLED, user_id=OTHER), user_id=CLIENT, trainer_id=TRAINER
        )


@pytest.mark.parametrize(
    ("furthest", "history"),
    [
        *[
            (rules.furthest_status, [SessionStatus(status) for status in history])
            for history in (
                ["scheduled", "in_progress", "completed"],
                ["scheduled", "in_progress", "cancelled"],
                ["scheduled", "cancelled"],
                ["scheduled", "no_show"],
            )
        ],
        *[
            (rules.furthest_place, history)
            for history in (
                [JOINED, ATTENDED],
                [JOINED, NO_SHOW],
                [JOINED, LEFT],
                [JOINED, LEFT, REJOINED],
                [JOINED, LEFT, REJOINED, ATTENDED],
                [JOINED, CANCELLED],
                [JOINED, LEFT, CANCELLED],
                [JOINED, ATTENDED, CANCELLED],
            )
        ],
    ],
)
def test_a_sessions_or_places_story_ends_the_same_in_any_order(
    furthest: Callable[[Any, Any], Any], history: list[Any]
) -> None:
    for order in itertools.permutations(history):
        seen = order[0]
        for status in order[1:]:
            seen = furthest(seen, status)
        assert seen == history[-1], order


def test_joining_and_leaving_at_the_same_moment_leaves() -> None:
    at_once = rules.Place(Place.JOINED, LEFT_AT)
    assert rules.furthest_place(at_once, LEFT) == rules.furthest_place(LEFT, at_once) == LEFT


def test_a_new_workout_naming_someone_elses_session_is_refused_as_named_wrongly() -> None:
    with pytest.raises(rules.SessionNamedForSomeoneElse, match=f"not client {OTHER} with trainer"):
        rules.check_session_fits(
            known(), user_id=OTHER, trainer_id=TRAINER, refusal=rules.SessionNamedForSomeoneElse
        )


def test_the_refusal_asked_for_does_not_change_a_cancellation() -> None:
    with pytest.raises(rules.SessionNotDelivered):
        rules.check_session_fits(
            known(SessionStatus.CANCELLED),
            user_id=CLIENT,
            trainer_id=TRAINER,
            refusal=rules.SessionNamedForSomeoneElse,
        )


def test_refusals_are_rule_breaks_dead_lettered_as_rejected() -> None:
    for refusal in (
        rules.StatusChangeForbidden,
        rules.SessionMismatch,
        rules.SessionNotDelivered,
        rules.GroupLedBySomeoneElse,
        rules.NotTakingPart,
    ):
        assert issubclass(refusal, RuleBroken)
        assert refusal("why").kind == "rejected"
    assert issubclass(rules.SessionNamedForSomeoneElse, rules.SessionMismatch)


@pytest.mark.parametrize(
    ("payload", "status"),
    [
        (
            events.SessionBooked(session_id=7, user_id=CLIENT, trainer_id=TRAINER, session_date=AT),
            "scheduled",
        ),
        *[
            (kind(session_id=7, user_id=CLIENT, trainer_id=TRAINER, at=AT), str(status))
            for kind, status in STATUS_AFTER.items()
        ],
    ],
)
def test_every_booking_event_reports_its_session_and_how_far_along_it_is(
    payload: events.EventPayload, status: str
) -> None:
    assert rules.reported_by(payload) == known(SessionStatus(status))


def test_other_events_report_no_session() -> None:
    assert (
        rules.reported_by(
            rules.workout_logged(rules.NewWorkout(user_id=CLIENT, title="Run"), workout_id=A, at=AT)
        )
        is None
    )


# --- group sessions ---------------------------------------------------------------------


def group(*, cancelled: bool = False) -> rules.GroupSessionFacts:
    return rules.GroupSessionFacts(session_id=GROUP, trainer_id=TRAINER, cancelled=cancelled)


def test_a_group_session_not_known_yet_is_given_the_benefit_of_the_doubt() -> None:
    rules.check_group_place(None, None, user_id=CLIENT, trainer_id=OTHER)


@pytest.mark.parametrize("place", [Place.JOINED, Place.ATTENDED])
def test_a_client_taking_part_with_the_groups_trainer_fits(place: rules.PlaceStatus) -> None:
    rules.check_group_place(group(), place, user_id=CLIENT, trainer_id=TRAINER)


def test_a_group_workout_naming_another_trainer_does_not_fit_and_is_a_conflict() -> None:
    with pytest.raises(rules.GroupLedBySomeoneElse) as mismatch:
        rules.check_group_place(group(), Place.JOINED, user_id=CLIENT, trainer_id=OTHER)
    assert mismatch.value.reason == (
        f"group session {GROUP} is led by trainer {TRAINER}, not trainer {OTHER}"
    )
    # A mismatch, answered 409: not the 422 of a trainer-led request naming the wrong session.
    assert isinstance(mismatch.value, rules.SessionMismatch)
    assert not isinstance(mismatch.value, rules.SessionNamedForSomeoneElse)


@pytest.mark.parametrize(
    ("place", "refusal", "reason"),
    [
        (
            None,
            rules.NotTakingPart,
            f"client {CLIENT} has no place in group session {GROUP}: only its participants' "
            "workouts are logged",
        ),
        (
            Place.LEFT,
            rules.NotTakingPart,
            f"client {CLIENT} left group session {GROUP}: only its participants' workouts "
            "are logged",
        ),
        (
            Place.NO_SHOW,
            rules.SessionNotDelivered,
            f"client {CLIENT} was a no-show at group session {GROUP}: no workout can be "
            "delivered for it",
        ),
        (
            Place.CANCELLED,
            rules.SessionNotDelivered,
            f"group session {GROUP} was cancelled: no workout can be delivered for it",
        ),
    ],
)
def test_a_client_not_taking_part_is_refused_saying_why(
    place: rules.PlaceStatus | None, refusal: type[RuleBroken], reason: str
) -> None:
    with pytest.raises(refusal) as refused:
        rules.check_group_place(group(), place, user_id=CLIENT, trainer_id=TRAINER)
    assert refused.value.reason == reason


@pytest.mark.parametrize("place", [None, Place.JOINED, Place.ATTENDED])
def test_a_group_session_called_off_takes_no_workout_whatever_the_place(
    place: rules.PlaceStatus | None,
) -> None:
    with pytest.raises(rules.SessionNotDelivered, match=f"group session {GROUP} was cancelled"):
        rules.check_group_place(group(cancelled=True), place, user_id=CLIENT, trainer_id=TRAINER)


def test_the_trainer_is_checked_before_the_place() -> None:
    with pytest.raises(rules.GroupLedBySomeoneElse):
        rules.check_group_place(group(cancelled=True), None, user_id=CLIENT, trainer_id=OTHER)


@pytest.mark.parametrize(
    ("payload", "cancelled", "places"),
    [
        (scheduled(), False, ()),
        (joined(), False, ((CLIENT, JOINED),)),
        (left(), False, ((CLIENT, LEFT),)),
        (
            completed(attended=[CLIENT, 5], no_shows=[6]),
            False,
            ((CLIENT, ATTENDED), (5, ATTENDED), (6, NO_SHOW)),
        ),
        (called_off(), True, ()),
    ],
    ids=["scheduled", "joined", "left", "completed", "cancelled"],
)
def test_every_group_event_reports_its_trainer_and_the_places_it_moves(
    payload: events.EventPayload,
    cancelled: bool,
    places: tuple[tuple[int, rules.Place], ...],
) -> None:
    assert rules.group_reported_by(payload) == rules.GroupReport(group(cancelled=cancelled), places)
    assert rules.reported_by(payload) is None


def test_one_to_one_and_workout_events_report_no_group_session() -> None:
    booked = events.SessionBooked(session_id=7, user_id=CLIENT, trainer_id=TRAINER, session_date=AT)
    logged = rules.workout_logged(
        rules.NewWorkout(user_id=CLIENT, title="Run"), workout_id=A, at=AT
    )
    assert rules.group_reported_by(booked) is None
    assert rules.group_reported_by(logged) is None


# --- logging and moving workouts ----------------------------------------------------------


def test_a_new_workout_is_announced_with_its_totals_and_points() -> None:
    new = rules.NewWorkout(
        user_id=CLIENT,
        title="Legs",
        session_type=events.SessionType.TRAINER_LED,
        session_id=7,
        trainer_id=TRAINER,
        duration=45,
        intensity=6,
        exercises=[exercise("Squat", (10, 60.0), (10, 60.0), (10, 60.0))],
    )
    logged = rules.workout_logged(new, workout_id=A, at=AT)
    assert (logged.workout_id, logged.user_id, logged.title) == (A, CLIENT, "Legs")
    assert (logged.session_type, logged.session_id, logged.trainer_id) == (
        events.SessionType.TRAINER_LED,
        7,
        TRAINER,
    )
    assert (logged.duration, logged.intensity, logged.status) == (
        45,
        6,
        events.WorkoutStatus.COMPLETED,
    )
    assert (logged.total_sets, logged.total_reps, logged.total_weight) == (3, 30, 1800.0)
    assert logged.experience_points == 34
    assert logged.exercises == new.exercises


def test_a_new_workout_without_a_date_is_dated_when_logged_and_any_date_is_kept_in_utc() -> None:
    undated = rules.workout_logged(
        rules.NewWorkout(user_id=CLIENT, title="Run"), workout_id=A, at=AT
    )
    assert undated.date == AT
    paris = timezone(timedelta(hours=1))
    dated = rules.workout_logged(
        rules.NewWorkout(user_id=CLIENT, title="Run", date=datetime(2026, 3, 1, 9, tzinfo=paris)),
        workout_id=A,
        at=AT,
    )
    assert dated.date == datetime(2026, 3, 1, 8, tzinfo=UTC)
    assert dated.date.tzinfo is UTC


def test_a_planned_workout_is_announced_with_no_points() -> None:
    planned = rules.NewWorkout(
        user_id=CLIENT,
        title="Run",
        status=events.WorkoutStatus.PLANNED,
        exercises=[exercise("Row", (5, 10.0))],
    )
    logged = rules.workout_logged(planned, workout_id=A, at=AT)
    assert (logged.total_sets, logged.experience_points) == (1, 0)


@pytest.mark.parametrize(
    ("session_type", "status", "must_fit"),
    [
        (events.SessionType.TRAINER_LED, events.WorkoutStatus.IN_PROGRESS, True),
        (events.SessionType.TRAINER_LED, events.WorkoutStatus.COMPLETED, True),
        (events.SessionType.TRAINER_LED, events.WorkoutStatus.SKIPPED, False),
        (events.SessionType.TRAINER_LED, events.WorkoutStatus.CANCELLED, False),
        (events.SessionType.GROUP, events.WorkoutStatus.IN_PROGRESS, True),
        (events.SessionType.GROUP, events.WorkoutStatus.COMPLETED, True),
        (events.SessionType.GROUP, events.WorkoutStatus.SKIPPED, False),
        (events.SessionType.GROUP, events.WorkoutStatus.CANCELLED, False),
        (events.SessionType.SOLO, events.WorkoutStatus.COMPLETED, False),
        (events.SessionType.SOLO, events.WorkoutStatus.IN_PROGRESS, False),
        (events.SessionType.TRAINER_ASSISTED, events.WorkoutStatus.COMPLETED, False),
    ],
)
def test_only_a_trainer_led_or_group_workout_being_delivered_must_fit_its_session(
    session_type: events.SessionType, status: events.WorkoutStatus, must_fit: bool
) -> None:
    assert rules.must_fit_session(session_type, status) is must_fit


def test_the_same_change_always_carries_the_same_event_id_and_others_another() -> None:
    started = rules.status_change_id(
        A, events.WorkoutStatus.PLANNED, events.WorkoutStatus.IN_PROGRESS
    )
    assert started == rules.status_change_id(
        A, events.WorkoutStatus.PLANNED, events.WorkoutStatus.IN_PROGRESS
    )
    assert started == rules.workout_event_id(A, "planned->in_progress")
    ids = {
        started,
        rules.status_change_id(A, events.WorkoutStatus.IN_PROGRESS, events.WorkoutStatus.COMPLETED),
        rules.status_change_id(B, events.WorkoutStatus.PLANNED, events.WorkoutStatus.IN_PROGRESS),
        rules.workout_event_id(A, "logged"),
    }
    assert len(ids) == 4
    assert rules.workout_event_id(A, "logged") == str(
        uuid.uuid5(rules.WORKOUT_EVENTS_NAMESPACE, f"{A}:logged")
    )
