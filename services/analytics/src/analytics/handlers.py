"""What the analytics service does with each event it consumes: one record on the usage
book its batch loaded (`analytics.rules`).

From `booking.sessions` it keeps what each trainer's figures need: each session's kind,
trainer, date and status, and what became of each client's place in it. SessionStarted and
ParticipantLeft's reason change none of those figures; SessionStarted has no handler.

Every ledger event that carries a `balance` sets the client's credits to it, and each of them
that moves credits (all but CreditsRunningLow, a heads-up) is one of the client's ledger
entries (`CreditEntry`: what it did to their remaining credits). Those without
one (CreditDeductionRejected, SoloWorkoutCounted, PackageExpiringSoon) have no handler on
purpose: they change no figure of usage, so the consumer ignores them (never a dead letter).
"""

from __future__ import annotations

from typing import get_args

from analytics.rules import CreditEntry, Place, SessionKind, SessionStatus, UsageBook
from contracts.envelope import Event
from contracts.events import (
    CreditsExpired,
    CreditsGranted,
    CreditsRunningLow,
    EventPayload,
    GroupSessionCancelled,
    GroupSessionCompleted,
    GroupSessionScheduled,
    ParticipantJoined,
    ParticipantLeft,
    SessionBooked,
    SessionCancelled,
    SessionCompleted,
    SessionCreditDeducted,
    SessionCreditForfeited,
    SessionCreditRestored,
    SessionNoShow,
    SessionRescheduled,
    WorkoutLogged,
    WorkoutStatusChanged,
)
from servicekit.domain import Handlers

BalanceEvent = (
    CreditsGranted
    | SessionCreditDeducted
    | SessionCreditRestored
    | SessionCreditForfeited
    | CreditsExpired
    | CreditsRunningLow
)
#: The ledger's events that carry a balance, the union's members (listed once).
BALANCE_EVENTS: tuple[type[EventPayload], ...] = get_args(BalanceEvent)
WORKOUT_EVENTS = (WorkoutLogged, WorkoutStatusChanged)


def on_workout(book: UsageBook, event: Event[WorkoutLogged | WorkoutStatusChanged]) -> None:
    """Logged or its status changed: the workout as described; a trainer-led one names the
    client's trainer."""
    workout = event.payload
    if workout.trainer_id is not None:
        book.record_trainer_of(user_id=workout.user_id, trainer_id=workout.trainer_id)
    book.record_workout(
        workout_id=workout.workout_id,
        user_id=workout.user_id,
        session_type=workout.session_type,
        status=workout.status,
        changed_by=event.id,
        at=event.occurred_at,
        date=workout.date if isinstance(workout, WorkoutLogged) else None,
        trainer_id=workout.trainer_id,
    )


def on_balance_changed(book: UsageBook, event: Event[BalanceEvent]) -> None:
    """A ledger event: the balance it left. A deduction or a forfeit names the client's
    trainer: either is a session booked with them, which is what "clients they train"
    means in the contract."""
    entry = event.payload
    if isinstance(entry, SessionCreditDeducted | SessionCreditForfeited):
        book.record_trainer_of(user_id=entry.user_id, trainer_id=entry.trainer_id)
    book.record_credit_balance(user_id=entry.user_id, balance=entry.balance, at=event.occurred_at)
    moved = credit_entry(event)
    if moved is not None:
        book.record_credit_entry(moved)


def credit_entry(event: Event[BalanceEvent]) -> CreditEntry | None:
    """What a ledger event did to the client's remaining credits, as an entry of their list;
    None for CreditsRunningLow (it moves nothing)."""
    entry = event.payload
    change: int
    session_id: int | None = None
    detail: str | None = None
    match entry:
        case CreditsGranted():
            change, detail = entry.amount, entry.reason
        case SessionCreditDeducted():
            change, session_id, detail = -1, entry.session_id, entry.cause
        case SessionCreditRestored():
            change, session_id, detail = 1, entry.session_id, entry.reason
        case SessionCreditForfeited():
            change, session_id, detail = -1, entry.session_id, entry.cause
        case CreditsExpired():
            change = -entry.amount
        case _:
            return None
    return CreditEntry(
        event_id=event.id,
        user_id=entry.user_id,
        entry_type=entry.event_type,
        change=change,
        remaining=entry.balance.remaining,
        occurred_at=event.occurred_at,
        session_id=session_id,
        detail=detail,
    )


def on_session_booked(book: UsageBook, event: Event[SessionBooked]) -> None:
    """A one-to-one session booked: its trainer, date and client (whom the trainer trains)."""
    _place_booked(book, event.payload, SessionKind.ONE_TO_ONE)


def _place_booked(
    book: UsageBook, booked: SessionBooked | ParticipantJoined, kind: SessionKind
) -> None:
    """A client's place in a session of either kind: the session's date comes with it, and
    the trainer trains the client."""
    session = book.record_session(
        booked.session_id, kind=kind, trainer_id=booked.trainer_id, date=booked.session_date
    )
    book.record_place(session, booked.user_id, Place.BOOKED)
    book.record_trainer_of(user_id=booked.user_id, trainer_id=booked.trainer_id)


def on_session_rescheduled(book: UsageBook, event: Event[SessionRescheduled]) -> None:
    """Either kind of session moved: it is dated by its new date."""
    book.record_session(event.payload.session_id, date=event.payload.session_date)


_ONE_TO_ONE_ENDS = {
    SessionCompleted: (SessionStatus.COMPLETED, Place.ATTENDED),
    SessionNoShow: (SessionStatus.NO_SHOW, Place.NO_SHOW),
    SessionCancelled: (SessionStatus.CANCELLED, None),
}


def on_session_ended(
    book: UsageBook, event: Event[SessionCompleted | SessionNoShow | SessionCancelled]
) -> None:
    """A one-to-one session delivered, missed by its client, or cancelled."""
    ended = event.payload
    status, place = _ONE_TO_ONE_ENDS[type(ended)]
    session = book.record_session(
        ended.session_id, kind=SessionKind.ONE_TO_ONE, trainer_id=ended.trainer_id, status=status
    )
    if place is not None:
        book.record_place(session, ended.user_id, place)


def on_group_scheduled(book: UsageBook, event: Event[GroupSessionScheduled]) -> None:
    scheduled = event.payload
    book.record_session(
        scheduled.session_id,
        kind=SessionKind.GROUP,
        trainer_id=scheduled.trainer_id,
        date=scheduled.session_date,
    )


def on_participant_joined(book: UsageBook, event: Event[ParticipantJoined]) -> None:
    _place_booked(book, event.payload, SessionKind.GROUP)


def on_participant_left(book: UsageBook, event: Event[ParticipantLeft]) -> None:
    left = event.payload
    session = book.record_session(
        left.session_id, kind=SessionKind.GROUP, trainer_id=left.trainer_id
    )
    book.record_place(session, left.user_id, Place.LEFT)


def on_group_completed(book: UsageBook, event: Event[GroupSessionCompleted]) -> None:
    """Delivered: each participant attended or did not show."""
    completed = event.payload
    session = book.record_session(
        completed.session_id,
        kind=SessionKind.GROUP,
        trainer_id=completed.trainer_id,
        status=SessionStatus.COMPLETED,
    )
    for user_id in completed.attended:
        book.record_place(session, user_id, Place.ATTENDED)
    for user_id in completed.no_shows:
        book.record_place(session, user_id, Place.NO_SHOW)


def on_group_cancelled(book: UsageBook, event: Event[GroupSessionCancelled]) -> None:
    cancelled = event.payload
    book.record_session(
        cancelled.session_id,
        kind=SessionKind.GROUP,
        trainer_id=cancelled.trainer_id,
        status=SessionStatus.CANCELLED,
    )


#: The events of `booking.sessions` analytics keeps something of.
SESSION_EVENTS: tuple[type[EventPayload], ...] = (
    SessionBooked,
    SessionRescheduled,
    *_ONE_TO_ONE_ENDS,
    GroupSessionScheduled,
    ParticipantJoined,
    ParticipantLeft,
    GroupSessionCompleted,
    GroupSessionCancelled,
)

HANDLERS: Handlers[UsageBook] = {
    **dict.fromkeys(WORKOUT_EVENTS, on_workout),
    **dict.fromkeys(BALANCE_EVENTS, on_balance_changed),
    SessionBooked: on_session_booked,
    SessionRescheduled: on_session_rescheduled,
    **dict.fromkeys(_ONE_TO_ONE_ENDS, on_session_ended),
    GroupSessionScheduled: on_group_scheduled,
    ParticipantJoined: on_participant_joined,
    ParticipantLeft: on_participant_left,
    GroupSessionCompleted: on_group_completed,
    GroupSessionCancelled: on_group_cancelled,
}
