"""What the booking service does with each event it consumes.

`booking.sessions` feeds the store (bookings and status changes by anyone, booking's own
API included: those come back already applied, and the consumer skips them as duplicates).
`credits.ledger` says whether each session's credit was deducted; its other events are of
no interest here and have no handler, so the consumer ignores them.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from booking.projection import STATUS_AFTER, CreditMarks, SessionChanges
from booking.rules import BookingRuleBroken, SessionIdTaken
from contracts.envelope import Event
from contracts.events import (
    EventPayload,
    SessionBooked,
    SessionCreditDeducted,
    SessionCreditRestored,
    SessionRescheduled,
)
from contracts.session_ids import SESSION_ID_TAKEN
from servicekit.consumer import IdempotentConsumer, Rejected

SESSION_EVENTS: tuple[type[EventPayload], ...] = (SessionBooked, SessionRescheduled, *STATUS_AFTER)


@dataclass
class _Batch:
    """What a batch's handlers share: the sessions its events name, locked and loaded before
    the first handler runs, and the ledger's verdicts; both are written after the last."""

    sessions: SessionChanges
    marks: CreditMarks

    async def write(self) -> None:
        await self.sessions.write()
        await self.marks.write()


def register(consumer: IdempotentConsumer) -> None:
    """Attach the booking handlers to the service's consumer."""

    async def load(session: AsyncSession, batch: Sequence[Event[Any]]) -> _Batch:
        return _Batch(await SessionChanges.load(session, batch), CreditMarks(session))

    batch_of = consumer.share_per_batch(load)

    async def on_session_event(session: AsyncSession, event: Event[Any]) -> None:
        with _refusals_dead_lettered():
            batch_of(session).sessions.apply(event)

    for session_event in SESSION_EVENTS:
        consumer.on(session_event)(on_session_event)

    @consumer.on(SessionCreditDeducted)
    async def on_credit_deducted(
        session: AsyncSession, event: Event[SessionCreditDeducted]
    ) -> None:
        batch_of(session).marks.credit_deducted(event.payload.session_id)

    @consumer.on(SessionCreditRestored)
    async def on_credit_restored(
        session: AsyncSession, event: Event[SessionCreditRestored]
    ) -> None:
        batch_of(session).marks.credit_restored(event.payload.session_id)


@contextmanager
def _refusals_dead_lettered() -> Iterator[None]:
    """An event the rules refuse can never be applied: it goes to the dead-letter topic
    with the rule's reason. An id another booking holds is counted apart: its producer
    left its block of ids (`contracts.session_ids`)."""
    try:
        yield
    except SessionIdTaken as taken:
        raise Rejected(taken.reason, kind=SESSION_ID_TAKEN) from taken
    except BookingRuleBroken as broken:
        raise Rejected(broken.reason) from broken
