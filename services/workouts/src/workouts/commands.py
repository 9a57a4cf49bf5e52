"""What a client, a trainer or staff ask of the workouts over HTTP: log a workout, move it
along. Each runs inside the caller's transaction: authorise, load and lock what the rules
need, let them decide, write, and record the event announcing the change in the outbox.

A workout is stored exactly as its events describe it (timestamps included), and the
service consumes its own topic: its own events come back as already applied, while a
rebuild from an empty database replays them through the consumer (`workouts.handlers`).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from contracts.events import (
    BOOKED_SESSION_TYPES,
    EventPayload,
    SessionType,
    WorkoutStatus,
    WorkoutStatusChanged,
)
from servicekit.auth import Caller
from servicekit.consumer import IdempotentConsumer
from servicekit.outbox import Outbox
from workouts.access import (
    CHANGE_RULE,
    LOG_RULE,
    NotPermitted,
    SessionNotVisible,
    may_name_group_session,
    may_name_session,
    may_write,
    must_train_client,
)
from workouts.models import WorkoutRow
from workouts.queries import readable_workout, trains
from workouts.rules import (
    LoggedWorkout,
    NewWorkout,
    SessionMismatch,
    SessionNamedForSomeoneElse,
    Totals,
    check_group_place,
    check_session_fits,
    check_status_change,
    experience_points,
    must_fit_session,
    status_change_id,
    workout_event_id,
    workout_logged,
)
from workouts.store import group_place, insert_workouts, session_facts


@dataclass(frozen=True, slots=True)
class WorkoutCommands:
    outbox: Outbox
    #: The service's consumer, which reads its own topic back.
    own_consumer: IdempotentConsumer

    async def log_workout(self, db: AsyncSession, new: NewWorkout, *, by: Caller) -> LoggedWorkout:
        """Record a workout with its totals and experience points, and announce it. A
        trainer-led workout must fit its booked session (see `check_session_fits`), a group
        workout a place in its group session (see `check_group_place`), one the caller may
        name (see `workouts.access`)."""
        if not may_write(
            by, owner=new.user_id, session_type=new.session_type, trainer=new.trainer_id
        ):
            raise NotPermitted(LOG_RULE)
        if must_train_client(by, owner=new.user_id, session_type=new.session_type):
            assert new.trainer_id is not None  # the session-type rule's
            if not await trains(db, trainer_id=new.trainer_id, user_id=new.user_id):
                raise NotPermitted(LOG_RULE)
        session_known = None
        if new.session_type in BOOKED_SESSION_TYPES:
            session_known = await _check_session_fits(
                db,
                new.session_type,
                new.session_id,
                new.user_id,
                new.trainer_id,
                named_by=by,
                refusal=SessionNamedForSomeoneElse,
            )
        now = datetime.now(UTC)
        logged = workout_logged(new, workout_id=uuid.uuid4(), at=now)
        workout = LoggedWorkout(logged, recorded_at=now, session_known=session_known)
        await insert_workouts(db, [workout])
        await self._announce(db, logged, workout_event_id(logged.workout_id, "logged"), now)
        return workout

    async def change_status(
        self, db: AsyncSession, workout_id: uuid.UUID, status: WorkoutStatus, *, by: Caller
    ) -> WorkoutRow:
        """Move a workout along its lifecycle and announce it. Asking for the status it
        already has changes and announces nothing. A trainer-led workout can only start or
        complete while its booked session fits it and was not cancelled or missed, a group
        workout while its client takes part in its group session."""
        row, session_trainer = await readable_workout(db, workout_id, by, for_update=True)
        session_type = SessionType(row.session_type)
        if not may_write(by, owner=row.user_id, session_type=session_type, trainer=session_trainer):
            raise NotPermitted(CHANGE_RULE)
        previous = WorkoutStatus(row.status)
        check_status_change(previous, status, by_staff=by.is_staff)
        if status is previous:
            return row
        if must_fit_session(session_type, status):
            await _check_session_fits(db, session_type, row.session_id, row.user_id, row.trainer_id)
        now = datetime.now(UTC)
        row.status = status
        totals = Totals(row.total_sets, row.total_reps, row.total_weight)
        row.experience_points = experience_points(totals, status)
        row.updated_at = now
        changed = WorkoutStatusChanged(
            workout_id=row.id,
            user_id=row.user_id,
            session_type=session_type,
            session_id=row.session_id,
            trainer_id=row.trainer_id,
            plan_id=row.plan_id,
            group_size=row.group_size,
            status=status,
            previous_status=previous,
        )
        await self._announce(db, changed, status_change_id(row.id, previous, status), now)
        return row

    async def _announce(
        self, db: AsyncSession, payload: EventPayload, event_id: str, at: datetime
    ) -> None:
        event = await self.outbox.add(db, payload, event_id=event_id, time=at)
        await self.own_consumer.record_own_event(db, event)


async def _check_session_fits(
    db: AsyncSession,
    session_type: SessionType,
    session_id: int | None,
    user_id: int,
    trainer_id: int | None,
    *,
    named_by: Caller | None = None,
    refusal: type[SessionMismatch] = SessionMismatch,
) -> bool:
    """A trainer-led or group workout's session. `named_by`: the caller naming the session,
    who must be allowed to. Whether the session is known here (one not known yet is given
    the benefit of the doubt). `refusal` is a trainer-led mismatch's: a group workout's
    refusals are all conflicts (see `check_group_place`)."""
    # The session-type rule (contract and database) guarantees both for trainer-led and
    # group workouts; this only narrows the types.
    assert session_id is not None
    assert trainer_id is not None
    if session_type is SessionType.GROUP:
        group, place = await group_place(db, session_id, user_id)
        if named_by is not None and not may_name_group_session(named_by, group):
            raise SessionNotVisible(session_id, group=True)
        check_group_place(group, place, user_id=user_id, trainer_id=trainer_id)
        return group is not None
    known = await session_facts(db, session_id)
    if named_by is not None and not may_name_session(named_by, known):
        raise SessionNotVisible(session_id)
    check_session_fits(known, user_id=user_id, trainer_id=trainer_id, refusal=refusal)
    return known is not None
