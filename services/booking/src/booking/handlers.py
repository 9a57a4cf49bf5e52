"""What the booking service does with each event it consumes: one decision on the session
book its batch loaded (`booking.rules`).

`booking.sessions` feeds the sessions (bookings and status changes by anyone, booking's own
API included: those come back already applied, and the consumer skips them as duplicates).
`credits.ledger` says whether each session's credit was deducted; its other events have no
handler, so the consumer ignores them.
"""

from __future__ import annotations

from booking.rules import SessionBook
from contracts.envelope import Event
from contracts.events import (
    SessionBooked,
    SessionCreditDeducted,
    SessionCreditRestored,
    SessionRescheduled,
    SessionStatusEvent,
)
from contracts.sessions import STATUS_AFTER
from servicekit.domain import Handlers


def on_booked(book: SessionBook, event: Event[SessionBooked]) -> None:
    """Booked when the event says (its `time`; when it is applied if it has none)."""
    book.book(event.payload, at=event.occurred_at)


def on_rescheduled(book: SessionBook, event: Event[SessionRescheduled]) -> None:
    book.reschedule(event.payload, at=event.occurred_at)


def on_moved(book: SessionBook, event: Event[SessionStatusEvent]) -> None:
    """Dated by the event's own `at`, not its envelope's time."""
    book.move(event.payload)


def on_credit_deducted(book: SessionBook, event: Event[SessionCreditDeducted]) -> None:
    book.credit_deducted(event.payload.session_id)


def on_credit_restored(book: SessionBook, event: Event[SessionCreditRestored]) -> None:
    book.credit_restored(event.payload.session_id)


HANDLERS: Handlers[SessionBook] = {
    SessionBooked: on_booked,
    SessionRescheduled: on_rescheduled,
    **dict.fromkeys(STATUS_AFTER, on_moved),
    SessionCreditDeducted: on_credit_deducted,
    SessionCreditRestored: on_credit_restored,
}
