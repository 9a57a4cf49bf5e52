"""Events of the contract as tests make them: a session booked and moved along its lifecycle,
a package bought, a workout logged and its status changed. Each builder defaults to one
client, one trainer and one day; a test names as keywords the ids and times its assertions
depend on.

Unit tests use these too, so this module imports nothing but `contracts` and the standard
library: no database, broker or web framework."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, TypeVar

from contracts import events

CLIENT, TRAINER = 123, 456
#: When a session is booked for, a workout is done and a package is bought, unless told.
DATE = datetime(2026, 1, 15, 10, tzinfo=UTC)
#: When a session moves along its lifecycle, unless told.
AT = datetime(2026, 1, 15, 10, 5, tzinfo=UTC)

StatusEvent = TypeVar("StatusEvent", bound=events.SessionStatusEvent)


def booked(
    session_id: int,
    user_id: int = CLIENT,
    trainer_id: int = TRAINER,
    *,
    session_date: datetime = DATE,
    **details: Any,
) -> events.SessionBooked:
    """`details`: the booking's other fields (duration, location, notes, and the `policy`
    its session is judged by)."""
    return events.SessionBooked(
        session_id=session_id,
        user_id=user_id,
        trainer_id=trainer_id,
        session_date=session_date,
        **details,
    )


def moved(
    kind: type[StatusEvent],
    session_id: int,
    user_id: int = CLIENT,
    trainer_id: int = TRAINER,
    *,
    at: datetime = AT,
    reason: str | None = None,
) -> StatusEvent:
    """The session started, completed, cancelled or missed (`kind`) at `at`."""
    return kind(session_id=session_id, user_id=user_id, trainer_id=trainer_id, at=at, reason=reason)


def purchase(
    sessions: int = 10,
    purchase_id: str = "order-1",
    user_id: int = CLIENT,
    *,
    at: datetime = DATE,
    **details: Any,
) -> events.PackagePurchased:
    """`details`: the purchase's other fields (package_name; package_type, solo_workouts,
    weekly_cap, and valid_until or valid_for_days). An unlimited or solo-only package has
    no `sessions`: pass 0."""
    return events.PackagePurchased(
        purchase_id=purchase_id, user_id=user_id, sessions=sessions, purchased_at=at, **details
    )


def workout(
    session_id: int | None,
    *,
    status: events.WorkoutStatus | str = events.WorkoutStatus.COMPLETED,
    user_id: int = CLIENT,
    trainer_id: int | None = TRAINER,
    workout_id: uuid.UUID | None = None,
    title: str = "Personal Training Session",
    date: datetime = DATE,
    **details: Any,
) -> events.WorkoutLogged:
    """A trainer-led workout for booked session `session_id` with `trainer_id`, or a solo one
    (no session, no trainer) when `session_id` is None; a fresh `workout_id` unless given.
    `details`: the workout's other fields (exercises, totals, duration...)."""
    link: dict[str, Any] = (
        {}
        if session_id is None
        else {
            "session_type": events.SessionType.TRAINER_LED,
            "session_id": session_id,
            "trainer_id": trainer_id,
        }
    )
    return events.WorkoutLogged(
        workout_id=workout_id or uuid.uuid4(),
        user_id=user_id,
        title=title,
        date=date,
        status=status,
        **link,
        **details,
    )


def status_changed(
    workout: events.WorkoutLogged,
    status: events.WorkoutStatus | str,
    *,
    previous: events.WorkoutStatus | str | None = None,
) -> events.WorkoutStatusChanged:
    """`workout` moved to `status` from `previous` (by default, the status it was logged in)."""
    return events.WorkoutStatusChanged(
        workout_id=workout.workout_id,
        user_id=workout.user_id,
        session_type=workout.session_type,
        session_id=workout.session_id,
        trainer_id=workout.trainer_id,
        plan_id=workout.plan_id,
        group_size=workout.group_size,
        status=status,
        previous_status=previous or workout.status,
    )
