"""What the analytics service does with each event it consumes. CreditDeductionRejected has
no handler on purpose: it carries no balance and changes no usage."""

from __future__ import annotations

from collections.abc import Awaitable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from analytics.tracker import UsageNotRecordable, UsageTracker
from contracts.envelope import Event
from contracts.events import (
    CreditsGranted,
    SessionCreditDeducted,
    SessionCreditRestored,
    WorkoutLogged,
    WorkoutStatusChanged,
)
from servicekit.consumer import IdempotentConsumer, Rejected
from servicekit.outbox import Outbox

BALANCE_EVENTS = (CreditsGranted, SessionCreditDeducted, SessionCreditRestored)


def register(consumer: IdempotentConsumer, outbox: Outbox) -> None:
    """Attach the analytics handlers to the service's consumer. Each batch's handlers share
    one tracker, loaded for the clients and workouts the batch names and written once they
    have all run."""

    def load(session: AsyncSession, batch: Sequence[Event[Any]]) -> Awaitable[UsageTracker]:
        return UsageTracker.load(
            session,
            outbox,
            clients=(event.payload.user_id for event in batch),
            workouts=(
                event.payload.workout_id
                for event in batch
                if isinstance(event.payload, WorkoutLogged | WorkoutStatusChanged)
            ),
        )

    tracker_of = consumer.share_per_batch(load)

    async def on_workout(session: AsyncSession, event: Event[Any]) -> None:
        workout: WorkoutLogged | WorkoutStatusChanged = event.payload
        with _rejecting_what_cannot_be_recorded():
            tracker = tracker_of(session)
            if workout.trainer_id is not None:
                tracker.record_trainer_of(user_id=workout.user_id, trainer_id=workout.trainer_id)
            tracker.record_workout(
                workout_id=workout.workout_id,
                user_id=workout.user_id,
                session_type=workout.session_type,
                status=workout.status,
                changed_by=event.id,
                at=_time_of(event),
            )

    consumer.on(WorkoutLogged)(on_workout)
    consumer.on(WorkoutStatusChanged)(on_workout)

    async def on_balance_changed(session: AsyncSession, event: Event[Any]) -> None:
        entry: CreditsGranted | SessionCreditDeducted | SessionCreditRestored = event.payload
        with _rejecting_what_cannot_be_recorded():
            tracker = tracker_of(session)
            if isinstance(entry, SessionCreditDeducted):
                tracker.record_trainer_of(user_id=entry.user_id, trainer_id=entry.trainer_id)
            tracker.record_credit_balance(
                user_id=entry.user_id, balance=entry.balance, at=_time_of(event)
            )

    for balance_event in BALANCE_EVENTS:
        consumer.on(balance_event)(on_balance_changed)


def _time_of(event: Event[Any]) -> datetime:
    """When the change happened: the event's own time; the time it is applied when the
    producer left `time` out (the attribute is optional in CloudEvents)."""
    return event.envelope.time or datetime.now(UTC)


@contextmanager
def _rejecting_what_cannot_be_recorded() -> Iterator[None]:
    """An event usage can never take (a workout changing hands, an id too large to store)
    is dead-lettered with the reason instead of retried."""
    try:
        yield
    except UsageNotRecordable as error:
        raise Rejected(str(error)) from error
