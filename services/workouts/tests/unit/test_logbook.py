"""The batch's logbook (`workouts.rules.Logbook`) through the handler table, on plain state:
no database, no broker. What each event the service consumes decides, and what it refuses."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from contracts import events
from contracts.envelope import Event, build_event
from contracts.sessions import STATUS_AFTER, SessionStatus
from testkit.events import CLIENT, TRAINER, booked, moved
from workouts import rules
from workouts.handlers import HANDLERS

from ..groups import (
    A_CLASS,
    A_CLASS_PLACES,
    GROUP,
    JOINED_AT,
    LEFT_AT,
    REJOINED_AT,
    called_off,
    completed,
    group_workout,
    joined,
    left,
    scheduled,
)

OTHER = 789
SENT = datetime(2026, 1, 15, 10, tzinfo=UTC)
A, B = uuid.UUID(int=1), uuid.UUID(int=2)


def apply(
    logbook: rules.Logbook, *payloads: events.EventPayload, at: datetime = SENT
) -> rules.Logbook:
    """Each payload as an event sent `at`, through the handler listed for its type."""
    for payload in payloads:
        envelope = build_event(payload, source="/tests/workouts", time=at)
        HANDLERS[type(payload)](logbook, Event(envelope, payload))
    return logbook


def facts(
    status: SessionStatus, session_id: int = 7, user_id: int = CLIENT
) -> rules.BookedSessionFacts:
    return rules.BookedSessionFacts(session_id, user_id, TRAINER, status)


def logged(
    workout_id: uuid.UUID = A, status: events.WorkoutStatus = events.WorkoutStatus.PLANNED
) -> events.WorkoutLogged:
    new = rules.NewWorkout(
        user_id=CLIENT,
        title="Legs",
        status=status,
        exercises=[
            events.Exercise(name="Squat", sets=[events.ExerciseSet(reps=10, weight=60.0)] * 3)
        ],
    )
    return rules.workout_logged(new, workout_id=workout_id, at=SENT)


def changed(
    status: events.WorkoutStatus, previous: events.WorkoutStatus, workout_id: uuid.UUID = A
) -> events.WorkoutStatusChanged:
    return events.WorkoutStatusChanged(
        workout_id=workout_id,
        user_id=CLIENT,
        session_type=events.SessionType.SOLO,
        status=status,
        previous_status=previous,
    )


def test_the_handler_table_lists_the_booking_events_and_the_workouts_own() -> None:
    assert set(HANDLERS) == {
        events.SessionBooked,
        *STATUS_AFTER,
        events.GroupSessionScheduled,
        events.ParticipantJoined,
        events.ParticipantLeft,
        events.GroupSessionCompleted,
        events.GroupSessionCancelled,
        events.WorkoutLogged,
        events.WorkoutStatusChanged,
    }
    assert events.SessionRescheduled not in HANDLERS


# --- booked sessions --------------------------------------------------------------------


def test_a_booking_makes_a_session_known_as_scheduled() -> None:
    logbook = apply(rules.Logbook(), booked(7))
    assert logbook.sessions == {7: facts(SessionStatus.SCHEDULED)}
    assert logbook.sessions_changed == {7}


@pytest.mark.parametrize(("kind", "status"), list(STATUS_AFTER.items()))
def test_a_status_event_first_makes_the_session_known_as_it_tells(
    kind: type[Any], status: SessionStatus
) -> None:
    logbook = apply(rules.Logbook(), moved(kind, 7))
    assert logbook.sessions == {7: facts(status)}
    assert logbook.sessions_changed == {7}


def test_a_session_moves_forward_and_is_written_when_it_does() -> None:
    logbook = rules.Logbook(sessions={7: facts(SessionStatus.SCHEDULED)})
    apply(logbook, moved(events.SessionStarted, 7))
    assert logbook.sessions[7].status is SessionStatus.IN_PROGRESS
    assert logbook.sessions_changed == {7}


def test_an_event_behind_what_is_known_changes_nothing() -> None:
    logbook = rules.Logbook(sessions={7: facts(SessionStatus.COMPLETED)})
    apply(logbook, booked(7), moved(events.SessionStarted, 7))
    assert logbook.sessions == {7: facts(SessionStatus.COMPLETED)}
    assert logbook.sessions_changed == set()


def test_a_cancellation_outranks_a_completion() -> None:
    logbook = apply(
        rules.Logbook(), moved(events.SessionCancelled, 7), moved(events.SessionCompleted, 7)
    )
    assert logbook.sessions[7].status is SessionStatus.CANCELLED


@pytest.mark.parametrize(
    "event",
    [
        booked(7, user_id=OTHER),
        booked(7, trainer_id=OTHER),
        moved(events.SessionNoShow, 7, user_id=OTHER),
        moved(events.SessionCompleted, 7, trainer_id=OTHER),
    ],
)
def test_an_event_giving_a_known_session_someone_else_is_refused_and_changes_nothing(
    event: events.EventPayload,
) -> None:
    logbook = rules.Logbook(sessions={7: facts(SessionStatus.SCHEDULED)})
    with pytest.raises(rules.SessionMismatch) as refused:
        apply(logbook, event)
    assert refused.value.reason.startswith(
        f"session 7 is booked for client {CLIENT} with trainer {TRAINER}, not client "
    )
    assert refused.value.kind == "rejected"
    assert logbook.sessions == {7: facts(SessionStatus.SCHEDULED)}
    assert logbook.sessions_changed == set()


def test_the_first_event_about_a_session_decides_whose_it_is() -> None:
    logbook = apply(rules.Logbook(), moved(events.SessionCancelled, 7, user_id=OTHER))
    with pytest.raises(rules.SessionMismatch, match=f"not client {CLIENT} with trainer {TRAINER}"):
        apply(logbook, booked(7))
    assert logbook.sessions == {7: facts(SessionStatus.CANCELLED, user_id=OTHER)}


def test_sessions_are_kept_apart() -> None:
    logbook = apply(
        rules.Logbook(), booked(1), moved(events.SessionStarted, 2), booked(3, user_id=OTHER)
    )
    assert logbook.sessions == {
        1: facts(SessionStatus.SCHEDULED, session_id=1),
        2: facts(SessionStatus.IN_PROGRESS, session_id=2),
        3: facts(SessionStatus.SCHEDULED, session_id=3, user_id=OTHER),
    }


# --- group sessions and their places ----------------------------------------------------

THE_GROUP = rules.GroupSessionFacts(GROUP, TRAINER)
JOINED = rules.Place(rules.PlaceStatus.JOINED, JOINED_AT)
LEFT = rules.Place(rules.PlaceStatus.LEFT, LEFT_AT)
ATTENDED = rules.Place(rules.PlaceStatus.ATTENDED)
CANCELLED = rules.Place(rules.PlaceStatus.CANCELLED)


def statuses(logbook: rules.Logbook) -> dict[int, dict[int, str]]:
    """Each place's status, by group session, then client."""
    return {
        session_id: {user_id: str(place.status) for user_id, place in places.items()}
        for session_id, places in logbook.places.items()
    }


def test_a_scheduled_group_session_is_known_with_its_trainer_and_no_places() -> None:
    logbook = apply(rules.Logbook(), scheduled())
    assert logbook.groups == {GROUP: THE_GROUP}
    assert (logbook.groups_changed, logbook.places) == ({GROUP}, {GROUP: {}})
    assert logbook.sessions == {}


def test_each_place_follows_its_clients_events() -> None:
    logbook = apply(rules.Logbook(), *A_CLASS)
    assert statuses(logbook) == {GROUP: A_CLASS_PLACES}
    assert logbook.places_changed == {(GROUP, user) for user in A_CLASS_PLACES}
    assert logbook.places[GROUP][7] == LEFT


def test_any_group_event_first_makes_the_group_session_known() -> None:
    logbook = apply(rules.Logbook(), joined())
    assert logbook.groups == {GROUP: THE_GROUP}
    assert logbook.places == {GROUP: {CLIENT: JOINED}}


def test_a_client_who_left_and_joined_again_takes_part_whichever_arrives_first() -> None:
    again = joined(at=REJOINED_AT)
    for order in ([joined(), left(), again], [again, left(), joined()], [left(), again]):
        logbook = apply(rules.Logbook(), *order)
        assert logbook.places == {GROUP: {CLIENT: replace(JOINED, at=REJOINED_AT)}}


def test_calling_a_group_session_off_cancels_every_place_and_any_learnt_later() -> None:
    logbook = rules.Logbook(groups={GROUP: THE_GROUP}, places={GROUP: {CLIENT: JOINED, 5: LEFT}})
    apply(logbook, called_off(), joined(6))
    assert logbook.groups == {GROUP: rules.GroupSessionFacts(GROUP, TRAINER, cancelled=True)}
    assert logbook.places == {GROUP: dict.fromkeys([CLIENT, 5, 6], CANCELLED)}
    assert logbook.groups_changed == {GROUP}
    assert logbook.places_changed == {(GROUP, CLIENT), (GROUP, 5), (GROUP, 6)}


def test_an_event_behind_what_is_known_of_a_place_changes_nothing() -> None:
    logbook = rules.Logbook(groups={GROUP: THE_GROUP}, places={GROUP: {CLIENT: ATTENDED}})
    apply(logbook, scheduled(), joined(), left(at=REJOINED_AT))
    assert logbook.places == {GROUP: {CLIENT: ATTENDED}}
    assert (logbook.groups_changed, logbook.places_changed) == (set(), set())


@pytest.mark.parametrize(
    "event",
    [
        scheduled(trainer_id=OTHER),
        joined(trainer_id=OTHER),
        left(trainer_id=OTHER),
        completed(trainer_id=OTHER),
        called_off(trainer_id=OTHER),
    ],
    ids=["scheduled", "joined", "left", "completed", "cancelled"],
)
def test_a_group_event_naming_another_trainer_is_refused_and_changes_nothing(
    event: events.EventPayload,
) -> None:
    logbook = rules.Logbook(groups={GROUP: THE_GROUP}, places={GROUP: {CLIENT: JOINED}})
    with pytest.raises(rules.GroupLedBySomeoneElse) as refused:
        apply(logbook, event)
    assert refused.value.reason == (
        f"group session {GROUP} is led by trainer {TRAINER}, not trainer {OTHER}"
    )
    assert logbook.groups == {GROUP: THE_GROUP}
    assert logbook.places == {GROUP: {CLIENT: JOINED}}
    assert (logbook.groups_changed, logbook.places_changed) == (set(), set())


def test_group_sessions_and_booked_sessions_are_kept_apart() -> None:
    logbook = apply(rules.Logbook(), booked(7), joined(), joined(session_id=41, trainer_id=OTHER))
    assert logbook.sessions == {7: facts(SessionStatus.SCHEDULED)}
    assert logbook.groups == {GROUP: THE_GROUP, 41: rules.GroupSessionFacts(41, OTHER)}
    assert statuses(logbook) == {GROUP: {CLIENT: "joined"}, 41: {CLIENT: "joined"}}


def test_a_group_workout_read_back_is_stored_as_logged_whatever_is_known_of_its_place() -> None:
    """History is not judged again: the workout was allowed when it was logged."""
    workout = group_workout(workout_id=A)
    logbook = apply(rules.Logbook(), called_off(), workout)
    assert [w.logged for w in logbook.logged] == [workout]


# --- workouts read back -----------------------------------------------------------------


def test_a_workout_is_stored_as_logged_recorded_when_its_event_was_sent() -> None:
    logbook = apply(rules.Logbook(), logged(), at=SENT + timedelta(minutes=3))
    assert logbook.logged == [
        rules.LoggedWorkout(logged(), recorded_at=SENT + timedelta(minutes=3))
    ]
    assert logbook.workouts == {
        A: rules.KnownWorkout(events.WorkoutStatus.PLANNED, rules.Totals(3, 30, 1800.0))
    }


def test_a_workout_event_without_a_time_is_recorded_when_it_is_read() -> None:
    payload = logged()
    envelope = build_event(payload, source="/tests/workouts").model_copy(update={"time": None})
    before = datetime.now(UTC)
    HANDLERS[events.WorkoutLogged](logbook := rules.Logbook(), Event(envelope, payload))
    assert before <= logbook.logged[0].recorded_at <= datetime.now(UTC)


def test_a_workout_logged_again_is_stored_once_as_first_logged() -> None:
    logbook = apply(rules.Logbook(), logged())
    apply(logbook, logged(), at=SENT + timedelta(hours=1))
    assert [w.recorded_at for w in logbook.logged] == [SENT]


def test_a_workout_already_stored_is_not_stored_again() -> None:
    stored = rules.KnownWorkout(events.WorkoutStatus.COMPLETED, rules.Totals(3, 30, 1800.0))
    logbook = apply(rules.Logbook(workouts={A: stored}), logged())
    assert logbook.logged == []
    assert logbook.workouts == {A: stored}


def test_a_move_sets_the_status_its_points_and_when() -> None:
    logbook = apply(rules.Logbook(), logged())
    apply(
        logbook,
        changed(events.WorkoutStatus.COMPLETED, events.WorkoutStatus.PLANNED),
        at=SENT + timedelta(minutes=5),
    )
    assert logbook.moves == {
        A: rules.WorkoutMove(events.WorkoutStatus.COMPLETED, 34, SENT + timedelta(minutes=5))
    }
    assert logbook.workouts[A].status is events.WorkoutStatus.COMPLETED


def test_two_moves_of_one_workout_leave_the_last() -> None:
    logbook = rules.Logbook(
        workouts={A: rules.KnownWorkout(events.WorkoutStatus.PLANNED, rules.Totals(1, 10, 0.0))}
    )
    apply(logbook, changed(events.WorkoutStatus.IN_PROGRESS, events.WorkoutStatus.PLANNED))
    apply(
        logbook,
        changed(events.WorkoutStatus.CANCELLED, events.WorkoutStatus.IN_PROGRESS),
        at=SENT + timedelta(1),
    )
    assert logbook.moves == {
        A: rules.WorkoutMove(events.WorkoutStatus.CANCELLED, 0, SENT + timedelta(1))
    }


def test_a_move_to_the_status_a_workout_has_changes_nothing() -> None:
    logbook = rules.Logbook(
        workouts={A: rules.KnownWorkout(events.WorkoutStatus.COMPLETED, rules.Totals())}
    )
    apply(logbook, changed(events.WorkoutStatus.COMPLETED, events.WorkoutStatus.PLANNED))
    assert logbook.moves == {}


def test_history_is_not_judged_again() -> None:
    """A staff correction, or a change once allowed: read back, it is applied as it was."""
    logbook = rules.Logbook(
        workouts={A: rules.KnownWorkout(events.WorkoutStatus.COMPLETED, rules.Totals(1, 1, 0.0))}
    )
    apply(logbook, changed(events.WorkoutStatus.CANCELLED, events.WorkoutStatus.COMPLETED))
    assert logbook.moves[A].status is events.WorkoutStatus.CANCELLED


def test_a_change_to_a_workout_never_logged_is_refused_and_changes_nothing() -> None:
    logbook = apply(rules.Logbook(), logged(B))
    with pytest.raises(rules.ChangedBeforeLogged) as refused:
        apply(logbook, changed(events.WorkoutStatus.COMPLETED, events.WorkoutStatus.PLANNED))
    assert refused.value.reason == f"workout {A} changed status before it was logged"
    assert refused.value.kind == "rejected"
    assert logbook.moves == {}
    assert set(logbook.workouts) == {B}
