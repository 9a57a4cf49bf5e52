"""The workout rules, in the business's words. Pure: no I/O, no clock, no database.

- Totals come from the exercises: every set counts, reps add up, and the weight moved is the
  sum of reps * weight (a set without a weight moved none).
- Experience points reward a completed workout (see `experience_points`).
- A workout's status moves forward only (see `ALLOWED_STATUS_CHANGES`); staff may also call
  off a completed one (see `STAFF_CORRECTIONS`).
- A trainer-led workout must fit the booked session it names, and that session must not be
  cancelled or missed (see `check_session_fits`).
- The service's view of a booked session only ever moves towards its end
  (see `furthest_status`), so events about one session give the same view in any order.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from contracts.events import Exercise, WorkoutStatus

#: Experience points, documented here, in the API schema and in the README.
XP_PER_COMPLETED_WORKOUT = 10
XP_PER_SET = 1
REPS_PER_XP = 10
WEIGHT_PER_XP = 100

EXPERIENCE_POINTS_RULE = (
    "Only a completed workout earns experience points: 10 for completing it, plus 1 per set, "
    "plus 1 per 10 reps, plus 1 per 100 of weight moved (Σ reps * weight), rounded down. "
    "A planned, in-progress, skipped or cancelled workout has 0 until it is completed."
)


@dataclass(frozen=True, slots=True)
class Totals:
    total_sets: int = 0
    total_reps: int = 0
    total_weight: float = 0.0


def totals_of(exercises: Iterable[Exercise]) -> Totals:
    """What a workout's exercises add up to."""
    sets = [exercise_set for exercise in exercises for exercise_set in exercise.sets]
    return Totals(
        total_sets=len(sets),
        total_reps=sum(s.reps for s in sets),
        # fsum: a long list of fractional weights adds up without drifting.
        total_weight=math.fsum(s.reps * (s.weight or 0.0) for s in sets),
    )


def experience_points(totals: Totals, status: WorkoutStatus) -> int:
    """See `EXPERIENCE_POINTS_RULE`."""
    if status is not WorkoutStatus.COMPLETED:
        return 0
    return (
        XP_PER_COMPLETED_WORKOUT
        + XP_PER_SET * totals.total_sets
        + totals.total_reps // REPS_PER_XP
        + math.floor(totals.total_weight / WEIGHT_PER_XP)
    )


# --- a workout's status -----------------------------------------------------------------

#: Where a workout may go from each status. Statuses only move forward, so a workout never
#: passes through the same change twice; the finished ones (completed, skipped, cancelled)
#: are final. "Skipped" means never started, so an in-progress workout cannot be skipped.
ALLOWED_STATUS_CHANGES: dict[WorkoutStatus, frozenset[WorkoutStatus]] = {
    WorkoutStatus.PLANNED: frozenset(
        {
            WorkoutStatus.IN_PROGRESS,
            WorkoutStatus.COMPLETED,
            WorkoutStatus.SKIPPED,
            WorkoutStatus.CANCELLED,
        }
    ),
    WorkoutStatus.IN_PROGRESS: frozenset({WorkoutStatus.COMPLETED, WorkoutStatus.CANCELLED}),
    WorkoutStatus.COMPLETED: frozenset(),
    WorkoutStatus.SKIPPED: frozenset(),
    WorkoutStatus.CANCELLED: frozenset(),
}

#: Beyond the lifecycle, staff may call off a completed workout logged by mistake: one for a
#: session that was never booked, say, whose credit waits in the credits service for a
#: booking that will not come (cancelling the workout withdraws that deduction). Still
#: forward only: cancelled is final.
STAFF_CORRECTIONS: dict[WorkoutStatus, frozenset[WorkoutStatus]] = {
    WorkoutStatus.COMPLETED: frozenset({WorkoutStatus.CANCELLED}),
}

#: A trainer-led workout in one of these statuses means its session is being delivered.
DELIVERING_STATUSES = frozenset({WorkoutStatus.IN_PROGRESS, WorkoutStatus.COMPLETED})


class WorkoutRuleBroken(Exception):
    """A request the workout rules refuse; the message says why, in business words."""


class StatusChangeForbidden(WorkoutRuleBroken):
    pass


def check_status_change(
    current: WorkoutStatus, requested: WorkoutStatus, *, by_staff: bool = False
) -> None:
    """Refuse a change the workout's lifecycle does not allow (staying put is allowed), but
    a correction staff may make."""
    if requested is current or requested in ALLOWED_STATUS_CHANGES[current]:
        return
    if by_staff and requested in STAFF_CORRECTIONS.get(current, frozenset()):
        return
    allowed = sorted(ALLOWED_STATUS_CHANGES[current])
    raise StatusChangeForbidden(
        f"the workout is {current} and cannot become {requested}"
        + (f" (it may become {', '.join(allowed)})" if allowed else f" ({current} is final)")
    )


# --- booked sessions --------------------------------------------------------------------


class SessionStatus(StrEnum):
    """A booked session's status, as `booking.sessions` tells it."""

    SCHEDULED = "scheduled"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    NO_SHOW = "no_show"
    CANCELLED = "cancelled"


#: How far along its life a session is. Every change booking allows moves up this order
#: (scheduled → in_progress → completed; scheduled|in_progress → cancelled; scheduled →
#: no_show), so keeping the furthest status seen is the same as keeping the latest one, in
#: whatever order the events arrive. Cancelled ranks last: if a session were ever reported
#: both completed and cancelled, it counts as cancelled, as the credits service treats it.
_PROGRESS: dict[SessionStatus, int] = {
    SessionStatus.SCHEDULED: 0,
    SessionStatus.IN_PROGRESS: 1,
    SessionStatus.COMPLETED: 2,
    SessionStatus.NO_SHOW: 3,
    SessionStatus.CANCELLED: 4,
}

#: A session in one of these statuses was never delivered: no workout can be logged for it.
UNDELIVERED_SESSION_STATUSES = frozenset({SessionStatus.CANCELLED, SessionStatus.NO_SHOW})


def furthest_status(known: SessionStatus, reported: SessionStatus) -> SessionStatus:
    return max(known, reported, key=_PROGRESS.__getitem__)


@dataclass(frozen=True, slots=True)
class BookedSessionFacts:
    """What the service knows of a booked session."""

    session_id: int
    user_id: int
    trainer_id: int
    status: SessionStatus


class SessionMismatch(WorkoutRuleBroken):
    """The session is booked for another client or with another trainer."""


class SessionNotDelivered(WorkoutRuleBroken):
    """The session was cancelled or the client did not show up."""


def session_mismatch(known: BookedSessionFacts, *, user_id: int, trainer_id: int) -> str | None:
    """Why a client and trainer do not fit a booked session, or None when they do."""
    if (known.user_id, known.trainer_id) == (user_id, trainer_id):
        return None
    return (
        f"session {known.session_id} is booked for client {known.user_id} with trainer "
        f"{known.trainer_id}, not client {user_id} with trainer {trainer_id}"
    )


def check_session_fits(known: BookedSessionFacts | None, *, user_id: int, trainer_id: int) -> None:
    """A trainer-led workout must name its own client and trainer, and a session that was
    not cancelled or missed. A session not known yet is given the benefit of the doubt: its
    booking may simply not have arrived, and the credits service waits for it."""
    if known is None:
        return
    mismatch = session_mismatch(known, user_id=user_id, trainer_id=trainer_id)
    if mismatch:
        raise SessionMismatch(mismatch)
    if known.status in UNDELIVERED_SESSION_STATUSES:
        what = "was cancelled" if known.status is SessionStatus.CANCELLED else "was a no-show"
        raise SessionNotDelivered(
            f"session {known.session_id} {what}: no workout can be delivered for it"
        )
