"""The handler table: which events booking applies, and what each handler hands the rules
(the envelope's time for bookings and reschedules, the event's own `at` for moves)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from booking.handlers import HANDLERS
from booking.rules import CreditMark, NotStorable, SessionBook
from contracts import events
from contracts.sessions import SessionStatus
from testkit.events import AT, CLIENT, TRAINER

from .replay import SENT, booked, decide, event, moved, rescheduled

BALANCE = events.Balance(total=10, used=1, remaining=9)


def deducted(session_id: int = 5) -> events.SessionCreditDeducted:
    return events.SessionCreditDeducted(
        user_id=CLIENT,
        session_id=session_id,
        trainer_id=TRAINER,
        cause="session-completed",
        balance=BALANCE,
    )


def restored(session_id: int = 5) -> events.SessionCreditRestored:
    return events.SessionCreditRestored(
        user_id=CLIENT, session_id=session_id, reason="cancelled", balance=BALANCE
    )


def test_booking_applies_its_topics_session_events_and_the_ledgers_balances() -> None:
    assert set(HANDLERS) == {
        events.SessionBooked,
        events.SessionRescheduled,
        events.SessionStarted,
        events.SessionCompleted,
        events.SessionCancelled,
        events.SessionNoShow,
        events.GroupSessionScheduled,
        events.ParticipantJoined,
        events.ParticipantLeft,
        events.GroupSessionCompleted,
        events.GroupSessionCancelled,
        events.CreditsGranted,
        events.SessionCreditDeducted,
        events.SessionCreditRestored,
        events.SessionCreditForfeited,
        events.CreditsExpired,
        events.CreditsRunningLow,
    }


@pytest.mark.parametrize(
    "ignored",
    [events.CreditDeductionRejected, events.SoloWorkoutCounted, events.PackageExpiringSoon],
)
def test_ledger_events_without_a_balance_have_no_handler(ignored: type) -> None:
    """The consumer ignores them: never dead-lettered, whatever they say."""
    assert ignored not in HANDLERS


def test_a_booking_is_dated_by_its_envelope() -> None:
    book = decide(SessionBook(), booked())
    assert (book.sessions[5].created_at, book.sessions[5].updated_at) == (SENT, SENT)


def test_a_booking_without_a_time_is_dated_when_it_is_applied() -> None:
    before = datetime.now(UTC)
    book = SessionBook()
    HANDLERS[events.SessionBooked](book, event(booked(), time=None))
    assert before <= book.sessions[5].created_at <= datetime.now(UTC)


def test_an_envelope_time_no_session_can_hold_is_refused() -> None:
    too_late = event(booked(), time=datetime(9000, 1, 1, tzinfo=UTC))
    with pytest.raises(NotStorable, match=r"^event time 9000-01-01T00:00:00\+00:00 is out of"):
        HANDLERS[events.SessionBooked](SessionBook(), too_late)


def test_a_reschedule_is_dated_by_its_envelope() -> None:
    later = datetime(2026, 2, 1, 9, tzinfo=UTC)
    book = decide(SessionBook(), booked())
    HANDLERS[events.SessionRescheduled](book, event(rescheduled(later), time=AT))
    assert (book.sessions[5].session_date, book.sessions[5].updated_at) == (later, AT)


@pytest.mark.parametrize(
    ("kind", "status"),
    [
        (events.SessionStarted, SessionStatus.IN_PROGRESS),
        (events.SessionCompleted, SessionStatus.COMPLETED),
        (events.SessionCancelled, SessionStatus.CANCELLED),
        (events.SessionNoShow, SessionStatus.NO_SHOW),
    ],
)
def test_a_move_takes_its_status_and_its_own_at(
    kind: type[events.SessionStarted], status: SessionStatus
) -> None:
    book = decide(SessionBook(), booked())
    HANDLERS[kind](book, event(moved(kind), time=SENT + timedelta(days=30)))
    assert (book.sessions[5].status, book.sessions[5].updated_at) == (status, AT)


def test_a_move_ignores_an_envelope_time_no_session_can_hold() -> None:
    book = SessionBook()
    HANDLERS[events.SessionStarted](
        book, event(moved(events.SessionStarted), time=datetime(1, 1, 1, tzinfo=UTC))
    )
    assert book.sessions[5].status is SessionStatus.IN_PROGRESS


def test_a_waived_forfeit_changes_the_balance_and_no_sessions_mark() -> None:
    waived = events.SessionCreditRestored(
        user_id=CLIENT,
        session_id=5,
        reason="waived by staff",
        balance=events.Balance(total=10, used=0, remaining=10),
        restores="forfeit",
    )
    book = decide(SessionBook(), waived)
    assert book.credit_marks == {}
    assert book.available == {CLIENT: 10}


def test_the_ledgers_verdicts_mark_their_sessions() -> None:
    book = decide(SessionBook(), deducted(5), restored(6), deducted(6))
    assert book.credit_marks == {
        5: CreditMark(deducted=True),
        6: CreditMark(deducted=True, restored=True),
    }
    assert book.sessions == {}
