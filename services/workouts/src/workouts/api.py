"""The workouts HTTP API: log workout sessions, read them back, move them along.

Routes only translate: a request becomes one command (`workouts.commands`) or query
(`workouts.queries`); a broken rule is answered by the service's table of refusals
(`workouts.main.REFUSALS`) with a 4xx that says which rule.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query, status
from pydantic import Field, Strict, StringConstraints, field_validator

from contracts.events import (
    BOOKED_SESSION_TYPES,
    MAX_EXERCISES,
    MAX_ID,
    MAX_INTENSITY,
    MAX_NAME_LENGTH,
    MAX_REPS,
    MAX_SETS_PER_EXERCISE,
    MAX_TITLE_LENGTH,
    MAX_WEIGHT,
    MAX_WORKOUT_MINUTES,
    STORABLE,
    ContractModel,
    Exercise,
    ExerciseSet,
    Moment,
    SessionLink,
    SessionType,
    WorkoutStatus,
)
from servicekit.auth import CallerDep
from servicekit.runtime import Runtime
from workouts import queries
from workouts.commands import WorkoutCommands
from workouts.models import WorkoutRow
from workouts.rules import EXPERIENCE_POINTS_RULE, LoggedWorkout, NewWorkout

router = APIRouter(prefix="/api/workout/sessions", tags=["workout sessions"])

MAX_PAGE = 100
#: Deeper pages go by `after` (the last workout of the page before): an offset makes the
#: database walk every row before it.
MAX_OFFSET = 10_000

IdValue = Annotated[int, Field(gt=0, le=MAX_ID)]
Title = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_TITLE_LENGTH),
    STORABLE,
]
Name = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_NAME_LENGTH),
    STORABLE,
]
WorkoutId = Annotated[uuid.UUID, Path(description="The workout session's id")]


class SetInput(ContractModel):
    # Strict: a JSON boolean is not a count nor a weight, as the schema says.
    reps: Annotated[int, Strict(), Field(ge=0, le=MAX_REPS)]
    weight: Annotated[
        float | None,
        Strict(),
        Field(ge=0, le=MAX_WEIGHT, description="Absent or null: no weight"),
    ] = None


Sets = Annotated[list[SetInput], Field(max_length=MAX_SETS_PER_EXERCISE)]


class ExerciseInput(ContractModel):
    name: Name
    sets: Sets = Field(default_factory=list)

    @field_validator("sets", mode="before", json_schema_input_type=Sets | None)
    @classmethod
    def _null_is_no_sets(cls, value: object) -> object:
        return [] if value is None else value


Exercises = Annotated[list[ExerciseInput], Field(max_length=MAX_EXERCISES)]


class LogWorkoutRequest(SessionLink):
    """A workout to log. The contract's session-type rule applies as inherited from
    `SessionLink`: trainer-led names `sessionId` and `trainerId`, group `sessionId` and
    `trainerId` (and may say its `groupSize`), trainer-assisted `trainerId` and `planId`, solo
    (the default) none of them."""

    user_id: IdValue
    session_id: IdValue | None = None
    trainer_id: IdValue | None = None
    title: Title
    # Within the range its event may carry: a date beyond it was taken, then refused by
    # the event, a 500.
    date: Annotated[Moment | None, Field(description="RFC 3339 with a zone; default now")] = None
    duration: Annotated[int | None, Field(ge=1, le=MAX_WORKOUT_MINUTES, description="Minutes")] = (
        None
    )
    intensity: Annotated[
        int | None, Field(ge=1, le=MAX_INTENSITY, description="1 (easy) to 10 (max)")
    ] = None
    status: WorkoutStatus = WorkoutStatus.COMPLETED
    exercises: Exercises = Field(default_factory=list)

    # Null is taken for the default, and documented as taken.
    @field_validator("status", mode="before", json_schema_input_type=WorkoutStatus | None)
    @classmethod
    def _null_is_completed(cls, value: object) -> object:
        return WorkoutStatus.COMPLETED if value is None else value

    @field_validator("session_type", mode="before", json_schema_input_type=SessionType | None)
    @classmethod
    def _null_is_solo(cls, value: object) -> object:
        return SessionType.SOLO if value is None else value

    @field_validator("date", mode="before")
    @classmethod
    def _date_is_text(cls, value: object) -> object:
        # Pydantic would also read a number as a Unix timestamp; the schema says a string.
        if value is not None and not isinstance(value, str):
            raise ValueError("must be an RFC 3339 date-time string with a time zone")
        return value

    @field_validator("exercises", mode="before", json_schema_input_type=Exercises | None)
    @classmethod
    def _null_is_no_exercises(cls, value: object) -> object:
        return [] if value is None else value

    def to_new_workout(self) -> NewWorkout:
        return NewWorkout(
            user_id=self.user_id,
            title=self.title,
            status=self.status,
            session_type=self.session_type,
            session_id=self.session_id,
            trainer_id=self.trainer_id,
            plan_id=self.plan_id,
            group_size=self.group_size,
            date=self.date,
            duration=self.duration,
            intensity=self.intensity,
            exercises=[
                Exercise(
                    name=exercise.name,
                    sets=[ExerciseSet(reps=s.reps, weight=s.weight) for s in exercise.sets],
                )
                for exercise in self.exercises
            ],
        )


class StatusChangeRequest(ContractModel):
    status: WorkoutStatus


class SetOut(ContractModel):
    order: int
    reps: int
    weight: float | None


class ExerciseOut(ContractModel):
    order: int
    name: str
    sets: list[SetOut]


SESSION_KNOWN = (
    "Trainer-led and group workouts only (null for the others): whether this service has "
    "heard of the session's booking (a group workout's: of its group session). False: the "
    "workout is accepted all the same (the booking may be late), and its credit waits in the "
    "credits service until the booking arrives."
)


class WorkoutSession(ContractModel):
    """A logged workout session. Totals are computed from its exercises: `totalSets` counts
    the sets, `totalReps` adds up their reps, `totalWeight` is Σ reps * weight (a set without
    a weight counts 0). Exercises and sets come in the order they were logged (from 1)."""

    id: uuid.UUID
    user_id: int
    title: str
    date: datetime
    duration: int | None
    intensity: int | None
    status: WorkoutStatus
    session_type: SessionType
    session_id: int | None
    trainer_id: int | None
    plan_id: Annotated[str | None, Field(description="Trainer-assisted: the plan followed")]
    group_size: Annotated[int | None, Field(description="Group: the session's clients")]
    session_known: Annotated[bool | None, Field(description=SESSION_KNOWN)]
    total_weight: float
    total_reps: int
    total_sets: int
    experience_points: Annotated[int, Field(description=EXPERIENCE_POINTS_RULE)]
    exercises: list[ExerciseOut]
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, row: WorkoutRow) -> WorkoutSession:
        booked = SessionType(row.session_type) in BOOKED_SESSION_TYPES
        return cls(
            **{name: getattr(row, name) for name in _AS_STORED},
            id=row.id,
            session_known=row.session_known if booked else None,
            date=row.date.astimezone(UTC),
            exercises=[
                ExerciseOut(
                    order=exercise.position,
                    name=exercise.name,
                    sets=[
                        SetOut(order=s.position, reps=s.reps, weight=s.weight)
                        for s in exercise.sets
                    ],
                )
                for exercise in row.exercises
            ],
            created_at=row.created_at.astimezone(UTC),
            updated_at=row.updated_at.astimezone(UTC),
        )

    @classmethod
    def of_logged(cls, workout: LoggedWorkout) -> WorkoutSession:
        """The workout as `of` would give it once stored, without reading it back."""
        logged = workout.logged
        return cls(
            **{name: getattr(logged, name) for name in _AS_STORED},
            id=logged.workout_id,
            session_known=workout.session_known,
            date=logged.date,
            exercises=[
                ExerciseOut(
                    order=position,
                    name=exercise.name,
                    sets=[
                        SetOut(order=set_position, reps=s.reps, weight=s.weight)
                        for set_position, s in enumerate(exercise.sets, start=1)
                    ],
                )
                for position, exercise in enumerate(logged.exercises, start=1)
            ],
            created_at=workout.recorded_at,
            updated_at=workout.recorded_at,
        )


#: What a workout's answer takes unchanged from its row or its `WorkoutLogged` (the same
#: names in both; statuses and types stored as text are read back as the enums they are).
_AS_STORED = (
    "user_id",
    "title",
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
)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=WorkoutSession,
    responses={
        404: {
            "description": "A client or trainer named a session not known to be theirs, or "
            "a group session not known here"
        },
        409: {
            "description": "The trainer-led workout's session was cancelled or missed; the "
            "group workout's client takes no part in its group session (never joined, left, "
            "did not show), the group session is led by another trainer or was cancelled"
        },
        422: {"description": "Invalid, or the session is another client's or trainer's"},
    },
)
async def log_workout(
    workout: LogWorkoutRequest, caller: CallerDep, runtime: Runtime
) -> WorkoutSession:
    """A client logs their own workouts (a group workout as a participant of its group
    session); a trainer their own solo workouts and the trainer-led and group workouts of the
    sessions they train; staff and services anyone's."""
    async with runtime.database.transaction() as db:
        logged = await WorkoutCommands(runtime.outbox, runtime.consumer).log_workout(
            db, workout.to_new_workout(), by=caller
        )
    return WorkoutSession.of_logged(logged)


#: A workout the caller may not read answers as one never logged.
NOT_FOUND = {"description": "No such workout, or one the caller may not read"}


@router.get("/{workout_id}", response_model=WorkoutSession, responses={404: NOT_FOUND})
async def get_workout(workout_id: WorkoutId, caller: CallerDep, runtime: Runtime) -> WorkoutSession:
    async with runtime.database.transaction() as db:
        row, _ = await queries.readable_workout(db, workout_id, caller)
        return WorkoutSession.of(row)


@router.get(
    "",
    response_model=list[WorkoutSession],
    responses={422: {"description": "Invalid, or `after` names no workout of this list"}},
)
async def list_workouts(
    runtime: Runtime,
    caller: CallerDep,
    user_id: Annotated[int, Query(alias="userId", gt=0, le=MAX_ID, description="The client")],
    status_filter: Annotated[WorkoutStatus | None, Query(alias="status")] = None,
    session_type: Annotated[SessionType | None, Query(alias="sessionType")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
    after: Annotated[
        uuid.UUID | None, Query(description="The id of the last workout of the page before")
    ] = None,
) -> list[WorkoutSession]:
    """A client's workout sessions, newest first, among those the caller may read: a
    client's own, a trainer's own and those of the sessions (and group sessions) they train.
    Page with `limit` and `after`."""
    async with runtime.database.transaction() as db:
        rows = await queries.workouts_of(
            db,
            user_id,
            limit=limit,
            offset=offset,
            after=after,
            status=status_filter,
            session_type=session_type,
            visible_to=caller,
        )
        return [WorkoutSession.of(row) for row in rows]


@router.patch(
    "/{workout_id}",
    response_model=WorkoutSession,
    responses={
        404: NOT_FOUND,
        409: {
            "description": "The lifecycle does not allow the change, or a trainer-led "
            "workout's session was cancelled, missed or booked for someone else, or a group "
            "workout's client takes no part in its group session"
        },
    },
)
async def change_status(
    workout_id: WorkoutId, change: StatusChangeRequest, caller: CallerDep, runtime: Runtime
) -> WorkoutSession:
    """Allowed: planned → in_progress | completed | skipped | cancelled; in_progress →
    completed | cancelled. Completed, skipped and cancelled are final. Asking for the
    status a workout already has returns it unchanged. A solo workout is changed by its
    owner, a trainer-led or group one by its client or its session's trainer (and staff)."""
    async with runtime.database.transaction() as db:
        row = await WorkoutCommands(runtime.outbox, runtime.consumer).change_status(
            db, workout_id, change.status, by=caller
        )
    return WorkoutSession.of(row)
