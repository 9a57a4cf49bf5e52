"""What the workouts service does with each event it consumes, on the logbook its batch
loaded (`workouts.rules.Logbook`): its view of booked sessions and of group sessions' places
follows `booking.sessions` (reschedules change nothing it needs, so it ignores them), and its
workouts follow its own `workouts.workout-sessions`, which is how a rebuild restores them
(live, its own events come back already applied)."""

from __future__ import annotations

from typing import Any

from contracts.envelope import Event
from contracts.events import SessionBooked, WorkoutLogged, WorkoutStatusChanged
from contracts.sessions import STATUS_AFTER
from servicekit.domain import Handlers
from workouts.rules import GROUP_EVENTS, Logbook, group_reported_by, reported_by


def on_session_event(logbook: Logbook, event: Event[Any]) -> None:
    """Booked, started, completed, cancelled or missed: the session as the event tells it."""
    reported = reported_by(event.payload)
    assert reported is not None  # listed for session events only
    logbook.session_seen(reported)


def on_group_event(logbook: Logbook, event: Event[Any]) -> None:
    """Scheduled, joined, left, completed or called off: the group session and its places
    as the event tells them."""
    reported = group_reported_by(event.payload)
    assert reported is not None  # listed for group events only
    logbook.group_seen(reported)


def on_workout_logged(logbook: Logbook, event: Event[WorkoutLogged]) -> None:
    logbook.workout_logged(event.payload, at=event.occurred_at)


def on_workout_status_changed(logbook: Logbook, event: Event[WorkoutStatusChanged]) -> None:
    logbook.workout_status_changed(event.payload, at=event.occurred_at)


HANDLERS: Handlers[Logbook] = {
    SessionBooked: on_session_event,
    **dict.fromkeys(STATUS_AFTER, on_session_event),
    **dict.fromkeys(GROUP_EVENTS, on_group_event),
    WorkoutLogged: on_workout_logged,
    WorkoutStatusChanged: on_workout_status_changed,
}
