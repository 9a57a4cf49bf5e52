"""What the credits service does with each event it consumes: one line of the ledger's
rules (`credits.rules`) per event type, on the ledger its batch loaded.

A client's place in a group session is to the ledger what a one-to-one session is: joining
books it, leaving cancels it, the group's completion delivers or misses it. A group session
scheduled books nobody, so it has no handler."""

from __future__ import annotations

from typing import Any, get_args

from contracts import events
from contracts.envelope import Event
from contracts.sessions import STATUS_AFTER, SessionStatus
from credits.rules import DeductionRequest, Ledger, LedgerEvent, Place
from servicekit.domain import Handlers


def on_package_purchased(ledger: Ledger, event: Event[events.PackagePurchased]) -> None:
    ledger.grant_purchase(event.payload, caused_by=event.id)


def on_session_booked(ledger: Ledger, event: Event[events.SessionBooked]) -> None:
    booked = event.payload
    ledger.session_seen(
        Place(booked.session_id),
        user_id=booked.user_id,
        trainer_id=booked.trainer_id,
        status=None,
        caused_by=event.id,
        booked=booked,
    )


def on_session_rescheduled(ledger: Ledger, event: Event[events.SessionRescheduled]) -> None:
    ledger.rescheduled(event.payload.session_id, event.payload.session_date)


def on_session_moved(ledger: Ledger, event: Event[events.SessionStatusEvent]) -> None:
    """Started, completed, cancelled or missed: a completed session uses its credit."""
    moved = event.payload
    status = STATUS_AFTER[type(moved)]
    ledger.session_seen(
        Place(moved.session_id),
        user_id=moved.user_id,
        trainer_id=moved.trainer_id,
        status=status,
        caused_by=event.id,
        at=moved.at,
    )
    if status is SessionStatus.COMPLETED:
        ledger.deduct(
            DeductionRequest(
                session_id=moved.session_id,
                user_id=moved.user_id,
                trainer_id=moved.trainer_id,
                workout_id=None,
                cause=events.SESSION_COMPLETED,
                caused_by=event.id,
                delivered_at=moved.at,
            )
        )


def on_participant_joined(ledger: Ledger, event: Event[events.ParticipantJoined]) -> None:
    joined = event.payload
    ledger.session_seen(
        Place(joined.session_id, joined.user_id),
        user_id=joined.user_id,
        trainer_id=joined.trainer_id,
        status=None,
        caused_by=event.id,
        booked=joined,
    )


def on_participant_left(ledger: Ledger, event: Event[events.ParticipantLeft]) -> None:
    """A place given up: a cancellation of it, late or not by its policy."""
    left = event.payload
    ledger.session_seen(
        Place(left.session_id, left.user_id),
        user_id=left.user_id,
        trainer_id=left.trainer_id,
        status=SessionStatus.CANCELLED,
        caused_by=event.id,
        at=left.at,
    )


def on_group_ended(
    ledger: Ledger, event: Event[events.GroupSessionCompleted | events.GroupSessionCancelled]
) -> None:
    """Completed (who attended, who did not show) or called off (every place released)."""
    ended = event.payload
    completed = ended if isinstance(ended, events.GroupSessionCompleted) else None
    ledger.group_ended(
        ended.session_id,
        trainer_id=ended.trainer_id,
        attended=completed.attended if completed else (),
        no_shows=completed.no_shows if completed else (),
        cancelled=completed is None,
        at=ended.at,
        caused_by=event.id,
    )


def on_workout(
    ledger: Ledger, event: Event[events.WorkoutLogged | events.WorkoutStatusChanged]
) -> None:
    ledger.workout_reported(event.payload, caused_by=event.id, at=event.occurred_at)


def on_own_announcement(ledger: Ledger, event: Event[Any]) -> None:
    """The ledger's own topic, read back: see `Ledger.restore`."""
    ledger.restore(event)


HANDLERS: Handlers[Ledger] = {
    events.PackagePurchased: on_package_purchased,
    events.SessionBooked: on_session_booked,
    events.SessionRescheduled: on_session_rescheduled,
    **dict.fromkeys(STATUS_AFTER, on_session_moved),
    events.ParticipantJoined: on_participant_joined,
    events.ParticipantLeft: on_participant_left,
    events.GroupSessionCompleted: on_group_ended,
    events.GroupSessionCancelled: on_group_ended,
    events.WorkoutLogged: on_workout,
    events.WorkoutStatusChanged: on_workout,
    **dict.fromkeys(get_args(LedgerEvent), on_own_announcement),
}
