"""What the booking service does with each event it consumes: one decision on the session
book its batch loaded (`booking.rules`).

`booking.sessions` feeds the sessions (bookings and status changes by anyone, booking's own
API included: those come back already applied, and the consumer skips them as duplicates)
and the group sessions (scheduled, each place taken and given up, completed or cancelled; a
`SessionRescheduled` naming a group session moves it). Group events are dated by their own
`at`, the schedule (like a booking) by its envelope's time.
`credits.ledger` says whether each session's credit was deducted, and each balance it
carries is the client's latest (what the API books against); a grant also names the package
it opens. Its events without a balance (rejections, solo workouts counted, packages
expiring soon) have no handler, so the consumer ignores them.
"""

from __future__ import annotations

from booking.rules import SessionBook
from contracts.envelope import Event
from contracts.events import (
    CreditsExpired,
    CreditsGranted,
    CreditsRunningLow,
    GroupSessionCancelled,
    GroupSessionCompleted,
    GroupSessionScheduled,
    ParticipantJoined,
    ParticipantLeft,
    SessionBooked,
    SessionCreditDeducted,
    SessionCreditForfeited,
    SessionCreditRestored,
    SessionRescheduled,
    SessionStatusEvent,
)
from contracts.sessions import STATUS_AFTER
from servicekit.domain import Handlers

#: Ledger events that change nothing in booking but the client's balance.
BalanceOnly = SessionCreditForfeited | CreditsExpired | CreditsRunningLow


def on_booked(book: SessionBook, event: Event[SessionBooked]) -> None:
    """Booked when the event says (its `time`; when it is applied if it has none)."""
    book.book(event.payload, at=event.occurred_at)


def on_rescheduled(book: SessionBook, event: Event[SessionRescheduled]) -> None:
    book.reschedule(event.payload, at=event.occurred_at)


def on_moved(book: SessionBook, event: Event[SessionStatusEvent]) -> None:
    """Dated by the event's own `at`, not its envelope's time."""
    book.move(event.payload)


def on_group_scheduled(book: SessionBook, event: Event[GroupSessionScheduled]) -> None:
    """Scheduled when the event says (its `time`; when it is applied if it has none)."""
    book.schedule_group(event.payload, at=event.occurred_at)


def on_joined(book: SessionBook, event: Event[ParticipantJoined]) -> None:
    book.join(event.payload)


def on_left(book: SessionBook, event: Event[ParticipantLeft]) -> None:
    book.leave(event.payload)


def on_group_completed(book: SessionBook, event: Event[GroupSessionCompleted]) -> None:
    book.complete_group(event.payload)


def on_group_cancelled(book: SessionBook, event: Event[GroupSessionCancelled]) -> None:
    book.cancel_group(event.payload)


def on_granted(book: SessionBook, event: Event[CreditsGranted]) -> None:
    granted = event.payload
    book.balance_announced(granted.user_id, granted.balance)
    if granted.package is not None:
        book.package_granted(granted.user_id, granted.package)


def on_credit_deducted(book: SessionBook, event: Event[SessionCreditDeducted]) -> None:
    book.credit_deducted(event.payload.session_id)
    book.balance_announced(event.payload.user_id, event.payload.balance)


def on_credit_restored(book: SessionBook, event: Event[SessionCreditRestored]) -> None:
    """A waived forfeit gives back a credit the session never had deducted: only the
    balance changes then."""
    restored = event.payload
    if restored.restores == "deduction":
        book.credit_restored(restored.session_id)
    book.balance_announced(restored.user_id, restored.balance)


def on_balance(book: SessionBook, event: Event[BalanceOnly]) -> None:
    book.balance_announced(event.payload.user_id, event.payload.balance)


HANDLERS: Handlers[SessionBook] = {
    SessionBooked: on_booked,
    SessionRescheduled: on_rescheduled,
    **dict.fromkeys(STATUS_AFTER, on_moved),
    GroupSessionScheduled: on_group_scheduled,
    ParticipantJoined: on_joined,
    ParticipantLeft: on_left,
    GroupSessionCompleted: on_group_completed,
    GroupSessionCancelled: on_group_cancelled,
    CreditsGranted: on_granted,
    SessionCreditDeducted: on_credit_deducted,
    SessionCreditRestored: on_credit_restored,
    SessionCreditForfeited: on_balance,
    CreditsExpired: on_balance,
    CreditsRunningLow: on_balance,
}
