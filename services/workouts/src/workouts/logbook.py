"""The workout logbook's use cases: log a workout, move it along, look workouts up.

Each change runs inside the caller's transaction and records the event announcing it in the
outbox in that same transaction. A workout is stored exactly as its events describe it
(timestamps included), and the service consumes its own topic: its own events come back as
already applied (`record_own_event`), while a rebuild from an empty database replays them
through `WorkoutChanges`, a batch at a time, into the same rows.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, exists, false, or_, select, text, tuple_
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.envelope import Event
from contracts.events import (
    EventPayload,
    Exercise,
    SessionType,
    WorkoutLogged,
    WorkoutStatus,
    WorkoutStatusChanged,
)
from servicekit.auth import Caller
from servicekit.consumer import IdempotentConsumer, Rejected
from servicekit.db import any_of, columns_of, insert_rows
from servicekit.outbox import Outbox
from workouts.access import (
    CHANGE_RULE,
    LOG_RULE,
    NotPermitted,
    SessionNotVisible,
    may_name_session,
    may_read,
    may_write,
)
from workouts.booked_sessions import BookedSessions
from workouts.models import BookedSession, ExerciseRow, SetRow, WorkoutRow
from workouts.rules import (
    DELIVERING_STATUSES,
    Totals,
    check_session_fits,
    check_status_change,
    experience_points,
    totals_of,
)

#: Event ids are uuid5 of what happened in this namespace: a workout is logged once, and
#: passes through each status change at most once (statuses only move forward), so the same
#: change always carries the same event id.
WORKOUT_EVENTS_NAMESPACE = uuid.UUID("f3643e8c-dc15-437d-b297-6623d45d50d4")


class WorkoutNotFound(LookupError):
    def __init__(self, workout_id: uuid.UUID) -> None:
        super().__init__(f"no workout session {workout_id}")


@dataclass(frozen=True, slots=True)
class NewWorkout:
    """A workout as a client or trainer logs it. `date` None means now."""

    user_id: int
    title: str
    status: WorkoutStatus = WorkoutStatus.COMPLETED
    session_type: SessionType = SessionType.SOLO
    session_id: int | None = None
    trainer_id: int | None = None
    date: datetime | None = None
    duration: int | None = None
    intensity: int | None = None
    exercises: list[Exercise] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class LoggedWorkout:
    """A workout just logged: the event announcing it, when it was recorded (its
    `created_at` and `updated_at`), and whether its booked session was known then (None for
    a solo workout)."""

    logged: WorkoutLogged
    recorded_at: datetime
    session_known: bool | None = None


class Logbook:
    def __init__(
        self, session: AsyncSession, outbox: Outbox, own_consumer: IdempotentConsumer
    ) -> None:
        self.session = session
        self.outbox = outbox
        self.own_consumer = own_consumer

    async def log_workout(self, new: NewWorkout, *, by: Caller) -> LoggedWorkout:
        """Record a workout with its totals and experience points, and announce it. A
        trainer-led workout must fit its booked session (see `check_session_fits`), one
        the caller may name (see `workouts.access`)."""
        if not may_write(
            by, owner=new.user_id, session_type=new.session_type, trainer=new.trainer_id
        ):
            raise NotPermitted(LOG_RULE)
        session_known = None
        if new.session_type is SessionType.TRAINER_LED:
            session_known = await self._check_session_fits(
                new.session_id, new.user_id, new.trainer_id, named_by=by
            )
        now = _now()
        totals = totals_of(new.exercises)
        logged = WorkoutLogged(
            workout_id=uuid.uuid4(),
            user_id=new.user_id,
            session_type=new.session_type,
            session_id=new.session_id,
            trainer_id=new.trainer_id,
            title=new.title,
            # Stored and announced in UTC, whatever zone the client wrote it in.
            date=(new.date or now).astimezone(UTC),
            duration=new.duration,
            intensity=new.intensity,
            status=new.status,
            exercises=new.exercises,
            total_weight=totals.total_weight,
            total_reps=totals.total_reps,
            total_sets=totals.total_sets,
            experience_points=experience_points(totals, new.status),
        )
        workout = LoggedWorkout(logged, recorded_at=now, session_known=session_known)
        await _insert_workouts(self.session, [workout])
        await self._announce(logged, _event_id(logged.workout_id, "logged"), now)
        return workout

    async def change_status(
        self, workout_id: uuid.UUID, status: WorkoutStatus, *, by: Caller
    ) -> WorkoutRow:
        """Move a workout along its lifecycle and announce it. Asking for the status it
        already has changes and announces nothing. A trainer-led workout can only start or
        complete while its booked session fits it and was not cancelled or missed."""
        row, session_trainer = await self._readable(workout_id, by, for_update=True)
        if not may_write(
            by,
            owner=row.user_id,
            session_type=SessionType(row.session_type),
            trainer=session_trainer,
        ):
            raise NotPermitted(CHANGE_RULE)
        previous = WorkoutStatus(row.status)
        check_status_change(previous, status, by_staff=by.is_staff)
        if status is previous:
            return row
        session_type = SessionType(row.session_type)
        if session_type is SessionType.TRAINER_LED and status in DELIVERING_STATUSES:
            await self._check_session_fits(row.session_id, row.user_id, row.trainer_id)
        now = _now()
        _move(row, status, at=now)
        await self._announce(
            WorkoutStatusChanged(
                workout_id=row.id,
                user_id=row.user_id,
                session_type=session_type,
                session_id=row.session_id,
                trainer_id=row.trainer_id,
                status=status,
                previous_status=previous,
            ),
            _event_id(row.id, f"{previous}->{status}"),
            now,
        )
        return row

    async def _announce(self, payload: EventPayload, event_id: str, at: datetime) -> None:
        event = await self.outbox.add(self.session, payload, event_id=event_id, time=at)
        await self.own_consumer.record_own_event(self.session, event)

    async def workout(self, workout_id: uuid.UUID, *, by: Caller) -> WorkoutRow:
        row, _ = await self._readable(workout_id, by)
        return row

    async def _readable(
        self, workout_id: uuid.UUID, by: Caller, *, for_update: bool = False
    ) -> tuple[WorkoutRow, int | None]:
        """The workout, if `by` may read it (else `WorkoutNotFound`), and the trainer of its
        booked session when that had to be looked up to decide."""
        row = await self.session.get(WorkoutRow, workout_id, with_for_update=for_update)
        if row is None:
            raise WorkoutNotFound(workout_id)
        if by.sees_everything or by.is_user(row.user_id):
            return row, None
        session_trainer = await BookedSessions(self.session).trainer_of(row.session_id)
        if not may_read(by, owner=row.user_id, session_trainer=session_trainer):
            raise WorkoutNotFound(workout_id)
        return row, session_trainer

    async def workouts_of(
        self,
        user_id: int,
        *,
        limit: int,
        offset: int = 0,
        after: uuid.UUID | None = None,
        status: WorkoutStatus | None = None,
        session_type: SessionType | None = None,
        visible_to: Caller | None = None,
    ) -> list[WorkoutRow]:
        """A client's workouts, newest first, those after the workout `after` when given
        (`WorkoutNotFound` when it is not one of theirs the caller may read); only those
        `visible_to` may read."""
        query = select(WorkoutRow).where(WorkoutRow.user_id == user_id)
        if visible_to is not None and not visible_to.sees_everything:
            query = query.where(_readable_by(visible_to))
        if after is not None:
            cursor = (
                await self.session.execute(
                    query.with_only_columns(
                        WorkoutRow.date, WorkoutRow.created_at, WorkoutRow.id
                    ).where(WorkoutRow.id == after)
                )
            ).one_or_none()
            if cursor is None:
                raise WorkoutNotFound(after)
            query = query.where(
                tuple_(WorkoutRow.date, WorkoutRow.created_at, WorkoutRow.id) < tuple_(*cursor)
            )
        if status is not None:
            query = query.where(WorkoutRow.status == status)
        if session_type is not None:
            query = query.where(WorkoutRow.session_type == session_type)
        query = (
            query.order_by(
                WorkoutRow.date.desc(), WorkoutRow.created_at.desc(), WorkoutRow.id.desc()
            )
            .limit(limit)
            .offset(offset)
        )
        return list(await self.session.scalars(query))

    async def _check_session_fits(
        self,
        session_id: int | None,
        user_id: int,
        trainer_id: int | None,
        *,
        named_by: Caller | None = None,
    ) -> bool:
        """`named_by`: the caller naming the session, who must be allowed to. Whether the
        session is known here (one not known yet is given the benefit of the doubt)."""
        # The session-type rule (contract and database) guarantees both for trainer-led
        # workouts; this only narrows the types.
        assert session_id is not None
        assert trainer_id is not None
        known = await BookedSessions(self.session).facts_about(session_id)
        if named_by is not None and not may_name_session(named_by, known):
            raise SessionNotVisible(session_id)
        check_session_fits(known, user_id=user_id, trainer_id=trainer_id)
        return known is not None


@dataclass(slots=True)
class _Known:
    """What moving a workout's status needs of it."""

    status: str
    totals: Totals


@dataclass(frozen=True, slots=True)
class _Move:
    status: WorkoutStatus
    experience_points: int
    at: datetime


@dataclass
class WorkoutChanges:
    """The workouts a batch of `workouts.workout-sessions` events names (a rebuild's: live,
    the service's own events come back already applied), locked and loaded with one query
    before its first event is applied; the events decide in memory in their order, and
    `write` stores what they did with a statement for the new workouts and one for the
    moves. Apply only what it was loaded for."""

    session: AsyncSession
    _known: dict[uuid.UUID, _Known] = field(default_factory=dict)
    _logged: list[LoggedWorkout] = field(default_factory=list)
    _moves: dict[uuid.UUID, _Move] = field(default_factory=dict)

    @classmethod
    async def load(cls, session: AsyncSession, workout_ids: Iterable[uuid.UUID]) -> WorkoutChanges:
        changes = cls(session)
        named = sorted(set(workout_ids))
        if named:
            stored = WorkoutRow.__table__.c
            for row in await session.execute(
                select(
                    stored.id, stored.status, stored.total_sets, stored.total_reps,
                    stored.total_weight,
                )
                .where(stored.id == any_of(named, UUID(as_uuid=True)))
                .order_by(stored.id)
                .with_for_update()
            ):  # fmt: skip
                totals = Totals(row.total_sets, row.total_reps, row.total_weight)
                changes._known[row.id] = _Known(row.status, totals)
        return changes

    def logged(self, event: Event[WorkoutLogged]) -> None:
        """A workout stored as its `WorkoutLogged` describes it, unless it is already."""
        logged = event.payload
        if logged.workout_id in self._known:
            return
        totals = Totals(logged.total_sets, logged.total_reps, logged.total_weight)
        self._known[logged.workout_id] = _Known(logged.status, totals)
        self._logged.append(LoggedWorkout(logged, recorded_at=_moment_of(event)))

    def status_changed(self, event: Event[WorkoutStatusChanged]) -> None:
        """Move a workout as its `WorkoutStatusChanged` says. History is not judged again:
        the change was allowed when it was made."""
        changed = event.payload
        known = self._known.get(changed.workout_id)
        if known is None:
            raise Rejected(f"workout {changed.workout_id} changed status before it was logged")
        if known.status != changed.status:
            known.status = changed.status
            self._moves[changed.workout_id] = _Move(
                changed.status, experience_points(known.totals, changed.status), _moment_of(event)
            )

    async def write(self) -> None:
        """Store the workouts logged and moved since loading: the new ones first, as they
        were logged, so that moves apply to them as to any stored workout."""
        await _insert_workouts(self.session, self._logged)
        self._logged.clear()
        if self._moves:
            await self.session.execute(
                _MOVE_WORKOUTS,
                {
                    "ids": list(self._moves),
                    "statuses": [str(move.status) for move in self._moves.values()],
                    "experience_points": [m.experience_points for m in self._moves.values()],
                    "updated_ats": [move.at for move in self._moves.values()],
                },
            )
            self._moves.clear()


def _readable_by(caller: Caller) -> ColumnElement[bool]:
    """The caller's own workouts, and those of the sessions it trains (see `access`)."""
    readable: list[ColumnElement[bool]] = [false()]
    if caller.user_id is not None:
        readable.append(WorkoutRow.user_id == caller.user_id)
    if caller.trainer_id is not None:
        readable.append(
            exists().where(
                BookedSession.session_id == WorkoutRow.session_id,
                BookedSession.trainer_id == caller.trainer_id,
            )
        )
    return or_(*readable)


def _move(row: WorkoutRow, status: WorkoutStatus, *, at: datetime) -> None:
    row.status = status
    row.experience_points = experience_points(_totals_of(row), status)
    row.updated_at = at


def _moment_of(event: Event[Any]) -> datetime:
    return event.envelope.time or _now()


_WORKOUT_COLUMNS = (
    "id", "user_id", "title", "date", "duration", "intensity", "status", "session_type",
    "session_id", "trainer_id", "total_weight", "total_reps", "total_sets",
    "experience_points", "created_at", "updated_at",
)  # fmt: skip
_EXERCISE_COLUMNS = ("workout_id", "position", "name")
_SET_COLUMNS = ("workout_id", "exercise_position", "position", "reps", "weight")

#: Workouts with their exercises and sets in one statement (three `insert_rows`, the first
#: two as CTEs, each table's arrays behind a prefix of its own): one round trip whatever
#: their number, and the same text every time, so psycopg prepares it once per connection.
#: The foreign keys are checked at the end of the statement, when all three are in.
_INSERT_WORKOUTS = text(
    f"with workouts as ({insert_rows(WorkoutRow, _WORKOUT_COLUMNS, prefix='workout_').text}),"
    f" exercises as ({insert_rows(ExerciseRow, _EXERCISE_COLUMNS, prefix='exercise_').text})"
    f" {insert_rows(SetRow, _SET_COLUMNS, prefix='set_').text}"
)

#: Workouts moved along their lifecycle, in one statement.
_MOVE_WORKOUTS = text(
    """
    update workout_sessions
    set status = moved.status, experience_points = moved.experience_points,
        updated_at = moved.updated_at
    from unnest(
        cast(:ids as uuid[]), cast(:statuses as text[]), cast(:experience_points as bigint[]),
        cast(:updated_ats as timestamptz[])
    ) as moved(id, status, experience_points, updated_at)
    where workout_sessions.id = moved.id
    """
)


async def _insert_workouts(session: AsyncSession, workouts: Sequence[LoggedWorkout]) -> None:
    """Store workouts as their `WorkoutLogged` describe them, exercises and sets numbered
    from 1 in the order they were logged."""
    if not workouts:
        return
    workout_rows = [
        {"id": w.logged.workout_id, "user_id": w.logged.user_id, "title": w.logged.title,
         "date": w.logged.date, "duration": w.logged.duration, "intensity": w.logged.intensity,
         "status": str(w.logged.status), "session_type": str(w.logged.session_type),
         "session_id": w.logged.session_id, "trainer_id": w.logged.trainer_id,
         "total_weight": w.logged.total_weight, "total_reps": w.logged.total_reps,
         "total_sets": w.logged.total_sets, "experience_points": w.logged.experience_points,
         "created_at": w.recorded_at, "updated_at": w.recorded_at}
        for w in workouts
    ]  # fmt: skip
    exercise_rows: list[dict[str, Any]] = []
    set_rows: list[dict[str, Any]] = []
    for workout in workouts:
        workout_id = workout.logged.workout_id
        for position, exercise in enumerate(workout.logged.exercises, start=1):
            exercise_rows.append(
                {"workout_id": workout_id, "position": position, "name": exercise.name}
            )
            set_rows.extend(
                {"workout_id": workout_id, "exercise_position": position,
                 "position": set_position, "reps": exercise_set.reps,
                 "weight": exercise_set.weight}
                for set_position, exercise_set in enumerate(exercise.sets, start=1)
            )  # fmt: skip
    await session.execute(
        _INSERT_WORKOUTS,
        {
            **columns_of(workout_rows, _WORKOUT_COLUMNS, prefix="workout_"),
            **columns_of(exercise_rows, _EXERCISE_COLUMNS, prefix="exercise_"),
            **columns_of(set_rows, _SET_COLUMNS, prefix="set_"),
        },
    )


def _totals_of(row: WorkoutRow) -> Totals:
    return Totals(
        total_sets=row.total_sets, total_reps=row.total_reps, total_weight=row.total_weight
    )


def _event_id(workout_id: uuid.UUID, what: str) -> str:
    return str(uuid.uuid5(WORKOUT_EVENTS_NAMESPACE, f"{workout_id}:{what}"))


def _now() -> datetime:
    return datetime.now(UTC)
