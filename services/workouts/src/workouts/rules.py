"""The workout rules, in the business's words (who may do what is in `access`). Pure:
no I/O, no clock, no database (moments are passed in).

- Totals come from the exercises: every set counts, reps add up, and the weight moved is the
  sum of reps * weight (a set without a weight moved none).
- Experience points reward a completed workout (see `experience_points`).
- A workout's status moves forward only (see `ALLOWED_STATUS_CHANGES`); staff may also call
  off a completed one (see `STAFF_CORRECTIONS`).
- A trainer-led workout must fit the booked session it names, and that session must not be
  cancelled or missed (see `check_session_fits`).
- The service's view of a booked session only ever moves towards its end
  (see `furthest_status`), so events about one session give the same view in any order;
  an event giving a known session another client or trainer is refused.
- A group workout must name the trainer leading its group session and a client taking part
  in it, in a group session not called off (see `check_group_place`). The view of a group
  session's places, too, only moves towards their end, the later of a join and a leave
  standing (see `furthest_place`), and an event giving a known group session another
  trainer is refused.
- A workout's own events, read back (a rebuild), store it as logged and move it as changed:
  history is not judged again, but a change to a workout never logged is refused.

`Logbook` holds what one batch of events touches, loaded by the store (`workouts.store`),
and decides in memory.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import UTC, datetime
from enum import StrEnum

from contracts.events import (
    BOOKED_SESSION_TYPES,
    EventPayload,
    Exercise,
    GroupSessionCancelled,
    GroupSessionCompleted,
    GroupSessionScheduled,
    ParticipantJoined,
    ParticipantLeft,
    SessionBooked,
    SessionStatusEvent,
    SessionType,
    WorkoutLogged,
    WorkoutStatus,
    WorkoutStatusChanged,
)
from contracts.sessions import (
    DELIVERING_WORKOUT_STATUSES,
    STATUS_AFTER,
    UNDELIVERED_STATUSES,
    SessionStatus,
    booked_for_someone_else,
)
from servicekit.domain import RuleBroken

#: Event ids are uuid5 of what happened in this namespace: a workout is logged once, and
#: passes through each status change at most once (statuses only move forward), so the same
#: change always carries the same event id.
WORKOUT_EVENTS_NAMESPACE = uuid.UUID("f3643e8c-dc15-437d-b297-6623d45d50d4")

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


class StatusChangeForbidden(RuleBroken):
    """The workout's lifecycle does not allow the change asked for."""


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


def furthest_status(known: SessionStatus, reported: SessionStatus) -> SessionStatus:
    return max(known, reported, key=_PROGRESS.__getitem__)


@dataclass(frozen=True, slots=True)
class BookedSessionFacts:
    """What the service knows of a booked session."""

    session_id: int
    user_id: int
    trainer_id: int
    status: SessionStatus

    @property
    def booked(self) -> tuple[int, int]:
        """Whom the session is booked for: its client and its trainer."""
        return (self.user_id, self.trainer_id)


def reported_by(payload: EventPayload) -> BookedSessionFacts | None:
    """What a `booking.sessions` event tells of its session; None for any other event."""
    if isinstance(payload, SessionBooked):
        status = SessionStatus.SCHEDULED
    elif isinstance(payload, SessionStatusEvent):
        status = STATUS_AFTER[type(payload)]
    else:
        return None
    return BookedSessionFacts(
        session_id=payload.session_id,
        user_id=payload.user_id,
        trainer_id=payload.trainer_id,
        status=status,
    )


class SessionMismatch(RuleBroken):
    """The session is booked for another client or with another trainer."""


class SessionNamedForSomeoneElse(SessionMismatch):
    """A new workout names a session booked for another client or with another trainer: the
    request itself is wrong (a workout being moved along is a conflict instead)."""


class SessionNotDelivered(RuleBroken):
    """The session was cancelled or the client did not show up."""


def _check_booked_for(
    known: BookedSessionFacts,
    *,
    user_id: int,
    trainer_id: int,
    refusal: type[SessionMismatch] = SessionMismatch,
) -> None:
    named = (user_id, trainer_id)
    if reason := booked_for_someone_else(known.session_id, booked=known.booked, named=named):
        raise refusal(reason)


def check_session_fits(
    known: BookedSessionFacts | None,
    *,
    user_id: int,
    trainer_id: int,
    refusal: type[SessionMismatch] = SessionMismatch,
) -> None:
    """A trainer-led workout must name its own client and trainer (else `refusal`), and a
    session that was not cancelled or missed. A session not known yet is given the benefit
    of the doubt: its booking may simply not have arrived, and the credits service waits
    for it."""
    if known is None:
        return
    _check_booked_for(known, user_id=user_id, trainer_id=trainer_id, refusal=refusal)
    if known.status in UNDELIVERED_STATUSES:
        what = "was cancelled" if known.status is SessionStatus.CANCELLED else "was a no-show"
        raise SessionNotDelivered(
            f"session {known.session_id} {what}: no workout can be delivered for it"
        )


# --- group sessions ---------------------------------------------------------------------


class PlaceStatus(StrEnum):
    """What became of a client's place in a group session, as `booking.sessions` tells."""

    JOINED = "joined"
    LEFT = "left"
    ATTENDED = "attended"
    NO_SHOW = "no_show"
    CANCELLED = "cancelled"


#: How far along its life a place is, ranked as `_PROGRESS` ranks a booked session: joined
#: or left (before the session, a client may leave and join again), then attended or missed
#: (the group's completion), then cancelled (the studio called the whole group session off,
#: whatever came before). See `furthest_place`.
_PLACE_PROGRESS: dict[PlaceStatus, int] = {
    PlaceStatus.JOINED: 0,
    PlaceStatus.LEFT: 0,
    PlaceStatus.ATTENDED: 1,
    PlaceStatus.NO_SHOW: 2,
    PlaceStatus.CANCELLED: 3,
}

#: A client whose place is in one of these takes part in the group session.
TAKING_PART = frozenset({PlaceStatus.JOINED, PlaceStatus.ATTENDED})

#: The `booking.sessions` events about group sessions; each names the session's trainer.
GROUP_EVENTS = (
    GroupSessionScheduled,
    ParticipantJoined,
    ParticipantLeft,
    GroupSessionCompleted,
    GroupSessionCancelled,
)


@dataclass(frozen=True, slots=True)
class Place:
    """A client's place in a group session: its status, and when the client joined or left
    (the event's `at`), which decides between the two. None once the session has ended."""

    status: PlaceStatus
    at: datetime | None = None


def _place_order(place: Place) -> tuple[int, datetime, bool]:
    return (
        _PLACE_PROGRESS[place.status],
        place.at or datetime.min.replace(tzinfo=UTC),
        place.status is PlaceStatus.LEFT,
    )


def furthest_place(known: Place, reported: Place) -> Place:
    """The place as far along its life as either says (`_PLACE_PROGRESS`); between joining
    and leaving, the later stands (leaving, at the same moment), so a client who left and
    joined again takes part. Keeping the furthest place seen gives the same view in any
    order."""
    return max(known, reported, key=_place_order)


@dataclass(frozen=True, slots=True)
class GroupSessionFacts:
    """What the service knows of a group session: the trainer leading it, and whether the
    studio called it off (then every place in it is cancelled, even one learnt of later)."""

    session_id: int
    trainer_id: int
    cancelled: bool = False


@dataclass(frozen=True, slots=True)
class GroupReport:
    """What a group event tells: its group session (`cancelled` when the event calls it
    off), and the places it moves, as (client, place)."""

    group: GroupSessionFacts
    places: tuple[tuple[int, Place], ...] = ()


def group_reported_by(payload: EventPayload) -> GroupReport | None:
    """What a `booking.sessions` group event tells; None for any other event."""
    if not isinstance(payload, GROUP_EVENTS):
        return None
    places: tuple[tuple[int, Place], ...] = ()
    if isinstance(payload, ParticipantJoined):
        places = ((payload.user_id, Place(PlaceStatus.JOINED, payload.at)),)
    elif isinstance(payload, ParticipantLeft):
        places = ((payload.user_id, Place(PlaceStatus.LEFT, payload.at)),)
    elif isinstance(payload, GroupSessionCompleted):
        places = (
            *((user_id, Place(PlaceStatus.ATTENDED)) for user_id in payload.attended),
            *((user_id, Place(PlaceStatus.NO_SHOW)) for user_id in payload.no_shows),
        )
    cancelled = isinstance(payload, GroupSessionCancelled)
    return GroupReport(GroupSessionFacts(payload.session_id, payload.trainer_id, cancelled), places)


class GroupLedBySomeoneElse(SessionMismatch):
    """An event or a group workout names another trainer than the group session's."""


class NotTakingPart(RuleBroken):
    """A group workout's client has no place in its group session, or gave it up."""


def _check_led_by(known: GroupSessionFacts, trainer_id: int) -> None:
    if trainer_id != known.trainer_id:
        raise GroupLedBySomeoneElse(
            f"group session {known.session_id} is led by trainer {known.trainer_id}, "
            f"not trainer {trainer_id}"
        )


def check_group_place(
    group: GroupSessionFacts | None,
    place: PlaceStatus | None,
    *,
    user_id: int,
    trainer_id: int,
) -> None:
    """A group workout must name the trainer leading its group session and a client taking
    part in it (`TAKING_PART`: joined, or attended), in a group session not called off.
    Each refusal is a conflict with what booking said, not a malformed request: places
    change as clients join and leave. A group session not known yet is given the benefit
    of the doubt, as a trainer-led workout's booked session is (`check_session_fits`)."""
    if group is None:
        return
    _check_led_by(group, trainer_id)
    session = f"group session {group.session_id}"
    if group.cancelled or place is PlaceStatus.CANCELLED:
        raise SessionNotDelivered(f"{session} was cancelled: no workout can be delivered for it")
    if place is PlaceStatus.NO_SHOW:
        raise SessionNotDelivered(
            f"client {user_id} was a no-show at {session}: no workout can be delivered for it"
        )
    if place not in TAKING_PART:
        what = "left" if place is PlaceStatus.LEFT else "has no place in"
        raise NotTakingPart(
            f"client {user_id} {what} {session}: only its participants' workouts are logged"
        )


# --- logging and moving workouts ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NewWorkout:
    """A workout as a client or trainer logs it. `date` None means when it is logged."""

    user_id: int
    title: str
    status: WorkoutStatus = WorkoutStatus.COMPLETED
    session_type: SessionType = SessionType.SOLO
    session_id: int | None = None
    trainer_id: int | None = None
    plan_id: str | None = None
    group_size: int | None = None
    date: datetime | None = None
    duration: int | None = None
    intensity: int | None = None
    exercises: list[Exercise] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class LoggedWorkout:
    """A workout logged: the event announcing it, when it was recorded (its `created_at`
    and `updated_at`), and whether its booked session was known then (None for a solo
    workout, or when it is not known, as for a workout read back from its topic)."""

    logged: WorkoutLogged
    recorded_at: datetime
    session_known: bool | None = None


def workout_logged(new: NewWorkout, *, workout_id: uuid.UUID, at: datetime) -> WorkoutLogged:
    """The event announcing a new workout, with its totals and experience points."""
    totals = totals_of(new.exercises)
    as_asked = {name.name: getattr(new, name.name) for name in fields(new)}
    # Stored and announced in UTC, whatever zone the client wrote it in.
    as_asked["date"] = (new.date or at).astimezone(UTC)
    return WorkoutLogged(
        **as_asked,
        **asdict(totals),
        workout_id=workout_id,
        experience_points=experience_points(totals, new.status),
    )


def must_fit_session(session_type: SessionType, status: WorkoutStatus) -> bool:
    """Whether moving a workout to `status` needs its session to fit it: a trainer-led or
    group workout starting or completing delivers its session (a group's: one place)."""
    return session_type in BOOKED_SESSION_TYPES and status in DELIVERING_WORKOUT_STATUSES


def workout_event_id(workout_id: uuid.UUID, what: str) -> str:
    """`what`: "logged", or "<previous>-><status>" for a status change."""
    return str(uuid.uuid5(WORKOUT_EVENTS_NAMESPACE, f"{workout_id}:{what}"))


def status_change_id(workout_id: uuid.UUID, previous: WorkoutStatus, status: WorkoutStatus) -> str:
    return workout_event_id(workout_id, f"{previous}->{status}")


# --- a batch of events -------------------------------------------------------------------


class ChangedBeforeLogged(RuleBroken):
    """A workout's status change read before (or without) the workout itself."""


@dataclass(slots=True)
class KnownWorkout:
    """What moving a workout's status needs of it."""

    status: WorkoutStatus
    totals: Totals


@dataclass(frozen=True, slots=True)
class WorkoutMove:
    status: WorkoutStatus
    experience_points: int
    at: datetime


@dataclass
class Logbook:
    """The sessions and workouts a batch of events names, and what its events decided."""

    sessions: dict[int, BookedSessionFacts] = field(default_factory=dict)
    groups: dict[int, GroupSessionFacts] = field(default_factory=dict)
    #: Every place known in the group sessions loaded, by session, then client.
    places: dict[int, dict[int, Place]] = field(default_factory=dict)
    workouts: dict[uuid.UUID, KnownWorkout] = field(default_factory=dict)
    # What was decided since loading, for the store to write.
    #: Sessions learnt of or moved, by id.
    sessions_changed: set[int] = field(default_factory=set)
    #: Group sessions learnt of or called off, by id.
    groups_changed: set[int] = field(default_factory=set)
    #: Places learnt of or moved, as (session, client).
    places_changed: set[tuple[int, int]] = field(default_factory=set)
    #: New workouts, in the order they were logged.
    logged: list[LoggedWorkout] = field(default_factory=list)
    #: The last move of each workout moved.
    moves: dict[uuid.UUID, WorkoutMove] = field(default_factory=dict)

    def session_seen(self, reported: BookedSessionFacts) -> None:
        """Learn of a session, or of how far along it is. Raises `SessionMismatch` when the
        event gives a known session another client or trainer (a reused session id)."""
        known = self.sessions.get(reported.session_id)
        if known is None:
            self.sessions[reported.session_id] = reported
            self.sessions_changed.add(reported.session_id)
            return
        _check_booked_for(known, user_id=reported.user_id, trainer_id=reported.trainer_id)
        status = furthest_status(known.status, reported.status)
        if status is not known.status:
            self.sessions[known.session_id] = replace(known, status=status)
            self.sessions_changed.add(known.session_id)

    def group_seen(self, reported: GroupReport) -> None:
        """Learn of a group session, of its being called off, and of what became of the
        places the event names. Raises `GroupLedBySomeoneElse` when the event gives a known
        group session another trainer (a reused session id)."""
        session_id = reported.group.session_id
        known = self.groups.get(session_id)
        if known is not None:
            _check_led_by(known, reported.group.trainer_id)
        if known is None or (reported.group.cancelled and not known.cancelled):
            known = self.groups[session_id] = reported.group
            self.groups_changed.add(session_id)
        places = self.places.setdefault(session_id, {})
        moved = dict(reported.places)
        if known.cancelled:
            moved = dict.fromkeys([*places, *moved], Place(PlaceStatus.CANCELLED))
        for user_id, place in moved.items():
            current = places.get(user_id)
            furthest = place if current is None else furthest_place(current, place)
            if furthest != current:
                places[user_id] = furthest
                self.places_changed.add((session_id, user_id))

    def workout_logged(self, logged: WorkoutLogged, *, at: datetime) -> None:
        """A workout stored as its `WorkoutLogged` describes it, recorded `at`, unless it
        is already."""
        if logged.workout_id in self.workouts:
            return
        totals = Totals(logged.total_sets, logged.total_reps, logged.total_weight)
        self.workouts[logged.workout_id] = KnownWorkout(logged.status, totals)
        self.logged.append(LoggedWorkout(logged, recorded_at=at))

    def workout_status_changed(self, changed: WorkoutStatusChanged, *, at: datetime) -> None:
        """Move a workout as its `WorkoutStatusChanged` says, `at` then. History is not
        judged again: the change was allowed when it was made."""
        known = self.workouts.get(changed.workout_id)
        if known is None:
            raise ChangedBeforeLogged(
                f"workout {changed.workout_id} changed status before it was logged"
            )
        if known.status != changed.status:
            known.status = changed.status
            points = experience_points(known.totals, changed.status)
            self.moves[changed.workout_id] = WorkoutMove(changed.status, points, at)
