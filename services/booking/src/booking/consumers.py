"""What the booking service does with each event it consumes.

`booking.sessions` feeds the store (bookings and status changes by anyone, booking's own
API included: those come back already applied, and the consumer skips them as duplicates).
`credits.ledger` says whether each session's credit was deducted; its other events are of
no interest here and have no handler, so the consumer ignores them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from booking.projection import STATUS_AFTER, CreditMarks, Projection
from booking.rules import BookingRuleBroken
from contracts.envelope import Event
from contracts.events import (
    EventPayload,
    SessionBooked,
    SessionCreditDeducted,
    SessionCreditRestored,
    SessionRescheduled,
)
from servicekit.consumer import IdempotentConsumer, Rejected

SESSION_EVENTS: tuple[type[EventPayload], ...] = (SessionBooked, SessionRescheduled, *STATUS_AFTER)


def register(consumer: IdempotentConsumer) -> None:
    """Attach the booking handlers to the service's consumer."""

    async def on_session_event(session: AsyncSession, event: Event[Any]) -> None:
        with _refusals_dead_lettered():
            await Projection(session).apply(event)

    for session_event in SESSION_EVENTS:
        consumer.on(session_event)(on_session_event)

    @asynccontextmanager
    async def credit_marks_per_batch(
        session: AsyncSession, batch: Sequence[Event[Any]]
    ) -> AsyncIterator[None]:
        marks = CreditMarks()
        session.info[_CREDIT_MARKS] = marks
        try:
            yield
        finally:
            del session.info[_CREDIT_MARKS]
        await marks.write(session)

    consumer.around_batch = credit_marks_per_batch

    @consumer.on(SessionCreditDeducted)
    async def on_credit_deducted(
        session: AsyncSession, event: Event[SessionCreditDeducted]
    ) -> None:
        _credit_marks(session).credit_deducted(event.payload.session_id)

    @consumer.on(SessionCreditRestored)
    async def on_credit_restored(
        session: AsyncSession, event: Event[SessionCreditRestored]
    ) -> None:
        _credit_marks(session).credit_restored(event.payload.session_id)


#: Where a batch's handlers gather the ledger's verdicts (in the session's `info`).
_CREDIT_MARKS = "booking-credit-marks"


def _credit_marks(session: AsyncSession) -> CreditMarks:
    marks: CreditMarks = session.info[_CREDIT_MARKS]
    return marks


@contextmanager
def _refusals_dead_lettered() -> Iterator[None]:
    """An event the rules refuse can never be applied: it goes to the dead-letter topic
    with the rule's reason."""
    try:
        yield
    except BookingRuleBroken as broken:
        raise Rejected(broken.reason) from broken
