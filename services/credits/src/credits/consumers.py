"""What the credits service does with each event it consumes."""

from __future__ import annotations

from collections.abc import Awaitable, Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from contracts.envelope import Event
from contracts.events import (
    CreditDeductionRejected,
    CreditsGranted,
    PackagePurchased,
    SessionBooked,
    SessionCancelled,
    SessionCompleted,
    SessionCreditDeducted,
    SessionCreditRestored,
    SessionNoShow,
    SessionStarted,
    SessionStatusEvent,
    SessionType,
    WorkoutLogged,
    WorkoutStatus,
    WorkoutStatusChanged,
)
from credits.ledger import DeductionRequest, Ledger, Scope
from credits.models import SessionStatus
from servicekit.consumer import IdempotentConsumer, Rejected
from servicekit.outbox import Outbox

#: A trainer-led workout in one of these states means the session is being delivered.
DELIVERED_WORKOUT_STATUSES = frozenset({WorkoutStatus.IN_PROGRESS, WorkoutStatus.COMPLETED})

SESSION_STATUS_OF: dict[type[SessionStatusEvent], SessionStatus] = {
    SessionStarted: SessionStatus.IN_PROGRESS,
    SessionCompleted: SessionStatus.COMPLETED,
    SessionCancelled: SessionStatus.CANCELLED,
    SessionNoShow: SessionStatus.NO_SHOW,
}


def register(consumer: IdempotentConsumer, outbox: Outbox) -> None:
    """Attach the credits handlers to the service's consumer. Each batch's handlers share one
    ledger, loaded for everything the batch names and written once they have all run."""

    def load(session: AsyncSession, batch: Sequence[Event[Any]]) -> Awaitable[Ledger]:
        return Ledger.load(session, outbox, consumer, Scope.of(batch))

    ledger_of = consumer.share_per_batch(load)

    @consumer.on(PackagePurchased)
    async def on_package_purchased(session: AsyncSession, event: Event[PackagePurchased]) -> None:
        purchase = event.payload
        ledger_of(session).grant_credits(
            user_id=purchase.user_id,
            amount=purchase.sessions,
            purchase_id=purchase.purchase_id,
            reason=purchase.package_name,
            caused_by=event.id,
        )

    @consumer.on(SessionBooked)
    async def on_session_booked(session: AsyncSession, event: Event[SessionBooked]) -> None:
        booked = event.payload
        ledger = ledger_of(session)
        _refuse_a_reused_session_id(ledger, booked.session_id, booked.user_id, booked.trainer_id)
        ledger.session_seen(
            session_id=booked.session_id,
            user_id=booked.user_id,
            trainer_id=booked.trainer_id,
            status=None,
            caused_by=event.id,
        )

    async def on_session_status(session: AsyncSession, event: Event[Any]) -> None:
        moved: SessionStatusEvent = event.payload
        status = SESSION_STATUS_OF[type(moved)]
        ledger = ledger_of(session)
        _refuse_a_reused_session_id(ledger, moved.session_id, moved.user_id, moved.trainer_id)
        ledger.session_seen(
            session_id=moved.session_id,
            user_id=moved.user_id,
            trainer_id=moved.trainer_id,
            status=status,
            caused_by=event.id,
        )
        if status is SessionStatus.COMPLETED:
            ledger.deduct_session_credit(
                DeductionRequest(
                    session_id=moved.session_id,
                    user_id=moved.user_id,
                    trainer_id=moved.trainer_id,
                    workout_id=None,
                    cause="session-completed",
                    caused_by=event.id,
                )
            )

    for status_event in SESSION_STATUS_OF:
        consumer.on(status_event)(on_session_status)

    async def on_own_announcement(session: AsyncSession, event: Event[Any]) -> None:
        ledger_of(session).restore(event)

    for announced in (
        CreditsGranted,
        SessionCreditDeducted,
        SessionCreditRestored,
        CreditDeductionRejected,
    ):
        consumer.on(announced)(on_own_announcement)

    @consumer.on(WorkoutLogged)
    async def on_workout_logged(session: AsyncSession, event: Event[WorkoutLogged]) -> None:
        _deduct_for_workout(ledger_of(session), event.payload, event.id)

    @consumer.on(WorkoutStatusChanged)
    async def on_workout_status_changed(
        session: AsyncSession, event: Event[WorkoutStatusChanged]
    ) -> None:
        changed = event.payload
        called_off = changed.status is WorkoutStatus.CANCELLED
        if called_off and changed.session_type is SessionType.TRAINER_LED:
            # A deduction it parked waits for nothing now. The contract guarantees the
            # session for trainer-led workouts; this only narrows the type.
            assert changed.session_id is not None
            ledger_of(session).withdraw_parked(
                session_id=changed.session_id,
                workout_id=changed.workout_id,
                user_id=changed.user_id,
            )
            return
        _deduct_for_workout(ledger_of(session), changed, event.id)


def _deduct_for_workout(
    ledger: Ledger, workout: WorkoutLogged | WorkoutStatusChanged, event_id: str
) -> None:
    """A trainer-led workout that is being or has been delivered uses its session's credit.
    Solo workouts never do."""
    if workout.session_type is not SessionType.TRAINER_LED:
        return
    if workout.status not in DELIVERED_WORKOUT_STATUSES:
        return
    # The contract guarantees both for trainer-led workouts; this only narrows the types.
    assert workout.session_id is not None
    assert workout.trainer_id is not None
    ledger.deduct_session_credit(
        DeductionRequest(
            session_id=workout.session_id,
            user_id=workout.user_id,
            trainer_id=workout.trainer_id,
            workout_id=workout.workout_id,
            cause="workout-logged",
            caused_by=event_id,
        )
    )


def _refuse_a_reused_session_id(
    ledger: Ledger, session_id: int, user_id: int, trainer_id: int
) -> None:
    mismatch = ledger.session_mismatch(
        session_id=session_id, user_id=user_id, trainer_id=trainer_id
    )
    if mismatch:
        raise Rejected(mismatch)
