"""Where the workout rules meet the database: a batch's sessions, group sessions and
workouts, locked and loaded before its first event is applied, and what its events decided
written after, with one statement per kind of change whatever the number of rows
(`insert_rows`).

Workouts are locked before sessions, in the order the API's status changes lock them, so
that the two never wait for each other the wrong way round. Sessions and group sessions not
known yet are created as the first event about each describes them: that locks them too,
and one being created by another transaction is waited for, then left as that one made it,
so every decision rests on the client and trainer stored. A group session's places are read
(all of them: calling it off cancels every one) and changed under its row's lock.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import FromClause, Row, TextClause, select, text
from sqlalchemy.dialects.postgresql import BIGINT, UUID
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.envelope import Event
from contracts.events import WorkoutLogged, WorkoutStatus, WorkoutStatusChanged
from contracts.sessions import SessionStatus
from servicekit.db import any_of, columns_of, insert_rows
from workouts.models import (
    Base,
    BookedSession,
    ExerciseRow,
    GroupPlace,
    GroupSession,
    SetRow,
    WorkoutRow,
)
from workouts.rules import (
    BookedSessionFacts,
    GroupReport,
    GroupSessionFacts,
    KnownWorkout,
    Logbook,
    LoggedWorkout,
    Place,
    PlaceStatus,
    Totals,
    group_reported_by,
    reported_by,
)


def _create_unknown(model: type[Base], columns: Sequence[str]) -> TextClause:
    """Sessions not known yet, as the first event about each describes them; the ids of the
    ones it creates come back."""
    return insert_rows(model, columns, then="on conflict do nothing returning session_id")


def _upsert(model: type[Base], columns: Sequence[str], *, key: str, update: str) -> TextClause:
    """Rows inserted, or their `update` column set where their `key` is taken already."""
    return insert_rows(
        model, columns, then=f"on conflict ({key}) do update set {update} = excluded.{update}"
    )


_SESSION_COLUMNS = ("session_id", "user_id", "trainer_id", "status")
_SESSIONS_TABLE = BookedSession.__table__
_SESSIONS = _SESSIONS_TABLE.c
_CREATE_UNKNOWN = _create_unknown(BookedSession, _SESSION_COLUMNS)
_SET_STATUSES = _upsert(BookedSession, _SESSION_COLUMNS, key="session_id", update="status")

_GROUP_COLUMNS = ("session_id", "trainer_id", "cancelled")
_GROUPS_TABLE = GroupSession.__table__
_GROUPS = _GROUPS_TABLE.c
_CREATE_UNKNOWN_GROUPS = _create_unknown(GroupSession, _GROUP_COLUMNS)
_SET_CANCELLED = _upsert(GroupSession, _GROUP_COLUMNS, key="session_id", update="cancelled")
_PLACE_COLUMNS = ("session_id", "user_id", "status", "joined_or_left_at")
_PLACES = GroupPlace.__table__.c
_SET_PLACES = insert_rows(
    GroupPlace,
    _PLACE_COLUMNS,
    then="on conflict (session_id, user_id) do update"
    " set status = excluded.status, joined_or_left_at = excluded.joined_or_left_at",
)

_WORKOUTS = WorkoutRow.__table__.c
_WORKOUT_COLUMNS = (
    "id",
    "user_id",
    "title",
    "date",
    "duration",
    "intensity",
    "status",
    "session_type",
    "session_id",
    "trainer_id",
    "plan_id",
    "group_size",
    "total_weight",
    "total_reps",
    "total_sets",
    "experience_points",
    "created_at",
    "updated_at",
)
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


@dataclass(frozen=True, slots=True)
class LogbookStore:
    """The workouts service's `BatchStore`: a batch's part of the logbook."""

    async def load(self, db: AsyncSession, batch: Sequence[Event[Any]]) -> Logbook:
        logbook = Logbook()
        await _load_workouts(
            db,
            logbook,
            (
                event.payload.workout_id
                for event in batch
                if isinstance(event.payload, WorkoutLogged | WorkoutStatusChanged)
            ),
        )
        reports = (reported_by(event.payload) for event in batch)
        await _load_sessions(db, logbook, (r for r in reports if r is not None))
        group_reports = (group_reported_by(event.payload) for event in batch)
        await _load_groups(db, logbook, (r for r in group_reports if r is not None))
        return logbook

    async def write(self, db: AsyncSession, logbook: Logbook) -> None:
        """Store what was decided since loading: new workouts first, as they were logged,
        so that moves apply to them as to any stored workout; then the sessions' statuses,
        the group sessions called off and the places moved."""
        await insert_workouts(db, logbook.logged)
        if logbook.moves:
            moves = logbook.moves.values()
            await db.execute(
                _MOVE_WORKOUTS,
                {
                    "ids": list(logbook.moves),
                    "statuses": [str(move.status) for move in moves],
                    "experience_points": [move.experience_points for move in moves],
                    "updated_ats": [move.at for move in moves],
                },
            )
        if logbook.sessions_changed:
            changed = [logbook.sessions[s] for s in sorted(logbook.sessions_changed)]
            await db.execute(_SET_STATUSES, _session_columns(changed))
        if logbook.groups_changed:
            groups = [logbook.groups[s] for s in sorted(logbook.groups_changed)]
            await db.execute(_SET_CANCELLED, _group_columns(groups))
        if logbook.places_changed:
            places = [
                {
                    "session_id": s,
                    "user_id": u,
                    "status": str(logbook.places[s][u].status),
                    "joined_or_left_at": logbook.places[s][u].at,
                }
                for s, u in sorted(logbook.places_changed)
            ]
            await db.execute(_SET_PLACES, columns_of(places, _PLACE_COLUMNS))


async def _load_workouts(
    db: AsyncSession, logbook: Logbook, workout_ids: Iterable[uuid.UUID]
) -> None:
    """The workouts named, locked and loaded with one query, in id order."""
    named = sorted(set(workout_ids))
    if not named:
        return
    for row in await db.execute(
        select(
            _WORKOUTS.id,
            _WORKOUTS.status,
            _WORKOUTS.total_sets,
            _WORKOUTS.total_reps,
            _WORKOUTS.total_weight,
        )
        .where(_WORKOUTS.id == any_of(named, UUID(as_uuid=True)))
        .order_by(_WORKOUTS.id)
        .with_for_update()
    ):
        totals = Totals(row.total_sets, row.total_reps, row.total_weight)
        logbook.workouts[row.id] = KnownWorkout(WorkoutStatus(row.status), totals)


async def _load_sessions(
    db: AsyncSession, logbook: Logbook, reports: Iterable[BookedSessionFacts]
) -> None:
    """The sessions named, created or locked (row locks, in session id order) with two
    statements. `reports`: what each event tells of its session, in their order."""
    first: dict[int, BookedSessionFacts] = {}
    for reported in reports:
        first.setdefault(reported.session_id, reported)
    if not first:
        return
    ordered = [first[session_id] for session_id in sorted(first)]
    created, locked = await _create_or_lock(
        db, _SESSIONS_TABLE, _CREATE_UNKNOWN, _session_columns(ordered)
    )
    logbook.sessions.update((r.session_id, r) for r in ordered if r.session_id in created)
    logbook.sessions.update((row.session_id, _facts(row)) for row in locked)


async def _load_groups(db: AsyncSession, logbook: Logbook, reports: Iterable[GroupReport]) -> None:
    """The group sessions named, created or locked as `_load_sessions` does, with every place
    known in those known before."""
    first: dict[int, GroupSessionFacts] = {}
    for reported in reports:
        first.setdefault(reported.group.session_id, reported.group)
    if not first:
        return
    ordered = [first[session_id] for session_id in sorted(first)]
    created, locked = await _create_or_lock(
        db, _GROUPS_TABLE, _CREATE_UNKNOWN_GROUPS, _group_columns(ordered)
    )
    logbook.groups.update((g.session_id, g) for g in ordered if g.session_id in created)
    logbook.groups.update((row.session_id, _group_facts(row)) for row in locked)
    if not locked:
        return
    for place in await db.execute(
        select(*_PLACES).where(_PLACES.session_id == any_of([r.session_id for r in locked], BIGINT))
    ):
        logbook.places.setdefault(place.session_id, {})[place.user_id] = Place(
            PlaceStatus(place.status), place.joined_or_left_at
        )


async def _create_or_lock(
    db: AsyncSession, table: FromClause, create: TextClause, ordered: dict[str, list[Any]]
) -> tuple[set[int], list[Row[Any]]]:
    """Rows keyed by `session_id` created where none is yet (`create`, on conflict do
    nothing, with `ordered`'s column arrays, in session id order), the others locked (row
    locks, in session id order) and read. The ids created, and the rows read."""
    created = set(await db.scalars(create, ordered))
    known_before = [s for s in ordered["session_id"] if s not in created]
    if not known_before:
        return created, []
    rows = await db.execute(
        select(*table.c)
        .where(table.c.session_id == any_of(known_before, BIGINT))
        .order_by(table.c.session_id)
        .with_for_update()
    )
    return created, list(rows)


async def session_facts(db: AsyncSession, session_id: int) -> BookedSessionFacts | None:
    """What is known of a session, held steady until the caller's transaction ends: a
    cancellation being applied meanwhile waits, so a decision never rests on stale facts."""
    row = (
        await db.execute(
            select(*_SESSIONS).where(_SESSIONS.session_id == session_id).with_for_update(read=True)
        )
    ).one_or_none()
    return None if row is None else _facts(row)


async def group_place(
    db: AsyncSession, session_id: int, user_id: int
) -> tuple[GroupSessionFacts | None, PlaceStatus | None]:
    """What is known of a group session and of the client's place in it, held steady until
    the caller's transaction ends, as `session_facts` holds a session."""
    row = (
        await db.execute(
            select(*_GROUPS).where(_GROUPS.session_id == session_id).with_for_update(read=True)
        )
    ).one_or_none()
    if row is None:
        return None, None
    status = await db.scalar(
        select(_PLACES.status).where(_PLACES.session_id == session_id, _PLACES.user_id == user_id)
    )
    return _group_facts(row), None if status is None else PlaceStatus(status)


async def insert_workouts(db: AsyncSession, workouts: Sequence[LoggedWorkout]) -> None:
    """Store workouts as their `WorkoutLogged` describe them, exercises and sets numbered
    from 1 in the order they were logged."""
    if not workouts:
        return
    exercise_rows: list[dict[str, Any]] = []
    set_rows: list[dict[str, Any]] = []
    for workout in workouts:
        workout_id = workout.logged.workout_id
        for position, exercise in enumerate(workout.logged.exercises, start=1):
            exercise_rows.append(
                {"workout_id": workout_id, "position": position, "name": exercise.name}
            )
            set_rows.extend(
                {
                    "workout_id": workout_id,
                    "exercise_position": position,
                    "position": set_position,
                    "reps": exercise_set.reps,
                    "weight": exercise_set.weight,
                }
                for set_position, exercise_set in enumerate(exercise.sets, start=1)
            )
    await db.execute(
        _INSERT_WORKOUTS,
        {
            **columns_of([_workout_row(w) for w in workouts], _WORKOUT_COLUMNS, prefix="workout_"),
            **columns_of(exercise_rows, _EXERCISE_COLUMNS, prefix="exercise_"),
            **columns_of(set_rows, _SET_COLUMNS, prefix="set_"),
        },
    )


def _workout_row(workout: LoggedWorkout) -> dict[str, Any]:
    logged = workout.logged
    return {
        "id": logged.workout_id,
        "user_id": logged.user_id,
        "title": logged.title,
        "date": logged.date,
        "duration": logged.duration,
        "intensity": logged.intensity,
        "status": str(logged.status),
        "session_type": str(logged.session_type),
        "session_id": logged.session_id,
        "trainer_id": logged.trainer_id,
        "plan_id": logged.plan_id,
        "group_size": logged.group_size,
        "total_weight": logged.total_weight,
        "total_reps": logged.total_reps,
        "total_sets": logged.total_sets,
        "experience_points": logged.experience_points,
        "created_at": workout.recorded_at,
        "updated_at": workout.recorded_at,
    }


def _facts(row: Any) -> BookedSessionFacts:
    return BookedSessionFacts(
        session_id=row.session_id,
        user_id=row.user_id,
        trainer_id=row.trainer_id,
        status=SessionStatus(row.status),
    )


def _group_facts(row: Any) -> GroupSessionFacts:
    return GroupSessionFacts(
        session_id=row.session_id, trainer_id=row.trainer_id, cancelled=row.cancelled
    )


def _group_columns(groups: Iterable[GroupSessionFacts]) -> dict[str, list[Any]]:
    rows = [
        {"session_id": g.session_id, "trainer_id": g.trainer_id, "cancelled": g.cancelled}
        for g in groups
    ]
    return columns_of(rows, _GROUP_COLUMNS)


def _session_columns(sessions: Iterable[BookedSessionFacts]) -> dict[str, list[Any]]:
    rows = [
        {
            "session_id": s.session_id,
            "user_id": s.user_id,
            "trainer_id": s.trainer_id,
            "status": str(s.status),
        }
        for s in sessions
    ]
    return columns_of(rows, _SESSION_COLUMNS)
