"""The session book's rules: booking, moving and rescheduling a session, the ledger's
verdicts, and every refusal with its reason and the kind its dead letter gets."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from booking.rules import (
    DEFAULT_DURATION,
    BookingRuleBroken,
    ChangeRefused,
    CreditMark,
    NotStorable,
    SessionBook,
    SessionIdTaken,
    SessionNotFound,
)
from contracts import events
from contracts.session_ids import SESSION_ID_TAKEN
from contracts.sessions import SessionStatus
from servicekit.domain import RuleBroken
from testkit.events import AT, CLIENT, DATE, TRAINER

from .replay import OTHER, SENT, booked, moved, rescheduled

LATER = datetime(2026, 2, 1, 9, tzinfo=UTC)


def booked_book() -> SessionBook:
    """A book holding session 5, booked and stored before this batch."""
    book = SessionBook()
    book.book(booked(), at=SENT)
    stored = book.sessions[5]
    stored.new = False
    return book


def test_a_booking_makes_a_scheduled_session_dated_by_its_event() -> None:
    book = SessionBook()
    book.book(booked(duration=45, location="Gym", notes="knee"), at=SENT)
    session = book.sessions[5]
    assert (session.user_id, session.trainer_id, session.status) == (
        CLIENT,
        TRAINER,
        SessionStatus.SCHEDULED,
    )
    assert (session.session_date, session.duration, session.location, session.notes) == (
        DATE,
        45,
        "Gym",
        "knee",
    )
    assert (session.created_at, session.updated_at) == (SENT, SENT)
    assert session.booking_received
    assert session.new
    assert book.to_write() == [session]


def test_the_same_booking_again_changes_nothing() -> None:
    book = booked_book()
    book.book(booked(), at=AT)
    assert book.to_write() == []
    assert book.sessions[5].updated_at == SENT


def test_a_booking_of_the_same_moment_in_another_zone_is_the_same_booking() -> None:
    book = booked_book()
    book.book(booked(session_date=DATE.astimezone(timezone(timedelta(hours=2)))), at=AT)
    assert book.to_write() == []


@pytest.mark.parametrize(
    ("user_id", "trainer_id"), [(OTHER, TRAINER), (CLIENT, OTHER), (OTHER, OTHER)]
)
def test_a_booking_for_someone_else_under_a_booked_id_is_an_id_taken(
    user_id: int, trainer_id: int
) -> None:
    book = booked_book()
    with pytest.raises(SessionIdTaken) as taken:
        book.book(booked(user_id=user_id, trainer_id=trainer_id), at=AT)
    assert taken.value.reason == (
        f"session 5 is booked for client {CLIENT} with trainer {TRAINER}, "
        f"not client {user_id} with trainer {trainer_id}"
    )
    assert taken.value.kind == SESSION_ID_TAKEN


@pytest.mark.parametrize(
    "details", [{"session_date": LATER}, {"duration": 30}, {"location": "Gym"}, {"notes": "x"}]
)
def test_another_booking_under_a_booked_id_is_an_id_taken(details: dict[str, Any]) -> None:
    book = booked_book()
    with pytest.raises(SessionIdTaken, match="cannot reuse its id") as taken:
        book.book(booked(**details), at=AT)
    assert taken.value.kind == SESSION_ID_TAKEN


def test_an_id_taken_names_the_booked_date_in_utc() -> None:
    book = SessionBook()
    book.book(
        booked(session_date=datetime(2026, 1, 15, 12, tzinfo=timezone(timedelta(hours=2)))), at=SENT
    )
    with pytest.raises(SessionIdTaken) as taken:
        book.book(booked(session_date=LATER), at=AT)
    assert taken.value.reason == (
        "session 5 is already booked for 2026-01-15T10:00:00+00:00 (60 min); a booking for "
        "2026-02-01T09:00:00+00:00 (60 min) cannot reuse its id"
    )


def test_a_status_event_for_a_session_never_heard_of_makes_it_with_stand_ins() -> None:
    book = SessionBook()
    book.move(moved(events.SessionCompleted, reason="kiosk"))
    session = book.sessions[5]
    assert (session.status, session.status_reason, session.booking_received) == (
        SessionStatus.COMPLETED,
        "kiosk",
        False,
    )
    assert (session.session_date, session.duration, session.location, session.notes) == (
        AT,
        DEFAULT_DURATION,
        None,
        None,
    )
    assert (session.created_at, session.updated_at) == (AT, AT)
    assert session.new


def test_its_booking_then_fills_in_date_and_place_and_leaves_the_status() -> None:
    book = SessionBook()
    book.move(moved(events.SessionCancelled))
    book.book(booked(session_date=LATER, duration=30, location="Kiosk 3"), at=SENT)
    session = book.sessions[5]
    assert (session.status, session.session_date, session.duration, session.location) == (
        SessionStatus.CANCELLED,
        LATER,
        30,
        "Kiosk 3",
    )
    assert session.booking_received
    assert (session.created_at, session.updated_at) == (AT, SENT)


def test_a_booking_for_someone_else_than_a_status_event_named_is_an_id_taken() -> None:
    book = SessionBook()
    book.move(moved(events.SessionStarted))
    with pytest.raises(SessionIdTaken, match=f"not client {OTHER} with trainer {TRAINER}"):
        book.book(booked(user_id=OTHER), at=SENT)


def test_a_move_changes_status_reason_and_update_time() -> None:
    book = booked_book()
    book.move(moved(events.SessionCancelled, reason="ill"))
    session = book.sessions[5]
    assert (session.status, session.status_reason, session.updated_at) == (
        SessionStatus.CANCELLED,
        "ill",
        AT,
    )
    assert session.changed
    assert book.to_write() == [session]


def test_a_move_to_the_status_a_session_has_changes_nothing() -> None:
    book = booked_book()
    book.move(moved(events.SessionStarted))
    book.sessions[5].changed = False
    book.move(moved(events.SessionStarted, at=AT + timedelta(hours=1), reason="again"))
    assert book.to_write() == []
    assert book.sessions[5].updated_at == AT


def test_a_session_completed_elsewhere_without_a_start_is_completed() -> None:
    book = booked_book()
    book.move(moved(events.SessionCompleted))
    assert book.sessions[5].status is SessionStatus.COMPLETED


@pytest.mark.parametrize(
    "final", [events.SessionCompleted, events.SessionCancelled, events.SessionNoShow]
)
def test_nothing_moves_a_session_that_is_over(final: type[events.SessionCancelled]) -> None:
    book = SessionBook()
    book.move(moved(final))
    with pytest.raises(ChangeRefused, match="which is final: it cannot become in_progress") as no:
        book.move(moved(events.SessionStarted))
    assert no.value.kind == "rejected"


def test_a_started_session_cannot_be_a_no_show() -> None:
    book = booked_book()
    book.move(moved(events.SessionStarted))
    with pytest.raises(ChangeRefused) as refused:
        book.move(moved(events.SessionNoShow))
    assert refused.value.reason == (
        "session 5 cannot go from in_progress to no_show "
        "(from in_progress it may become cancelled, completed)"
    )


def test_a_move_for_someone_else_is_an_id_taken() -> None:
    book = booked_book()
    with pytest.raises(SessionIdTaken, match=f"not client {CLIENT} with trainer {OTHER}"):
        book.move(moved(events.SessionStarted, trainer_id=OTHER))
    assert book.sessions[5].status is SessionStatus.SCHEDULED


def test_a_reschedule_moves_the_date_and_is_dated_by_its_event() -> None:
    book = booked_book()
    book.reschedule(rescheduled(LATER), at=AT)
    session = book.sessions[5]
    assert (session.session_date, session.updated_at, session.changed) == (LATER, AT, True)


def test_a_reschedule_to_the_same_date_changes_nothing() -> None:
    book = booked_book()
    book.move(moved(events.SessionStarted))
    book.sessions[5].changed = False
    book.reschedule(rescheduled(DATE), at=AT)
    assert book.to_write() == []


def test_a_reschedule_of_a_session_never_booked_is_refused() -> None:
    with pytest.raises(SessionNotFound, match=r"^session 5 was never booked$") as refused:
        SessionBook().reschedule(rescheduled(LATER), at=AT)
    assert refused.value.kind == "rejected"


def test_only_a_scheduled_session_is_rescheduled() -> None:
    book = booked_book()
    book.move(moved(events.SessionStarted))
    with pytest.raises(
        ChangeRefused, match="session 5 is in_progress: only a scheduled session can be"
    ):
        book.reschedule(rescheduled(LATER), at=AT)


#: Outside the contract's range too: the events are made unchecked (`model_copy`), as a
#: careless producer's would arrive were the contract not in the way.
FAR_PAST = datetime(1899, 12, 31, tzinfo=UTC)
FAR_FUTURE = datetime(9000, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize("moment", [FAR_PAST, FAR_FUTURE])
def test_moments_no_session_can_hold_are_refused_by_name(moment: datetime) -> None:
    book = booked_book()
    with pytest.raises(NotStorable, match=r"^event time "):
        book.book(booked(), at=moment)
    with pytest.raises(NotStorable, match=r"^sessionDate "):
        book.book(booked().model_copy(update={"session_date": moment}), at=SENT)
    with pytest.raises(NotStorable, match=r"^at "):
        book.move(moved(events.SessionStarted).model_copy(update={"at": moment}))
    with pytest.raises(NotStorable, match=r"^event time "):
        book.reschedule(rescheduled(LATER), at=moment)
    with pytest.raises(NotStorable, match=r"^sessionDate "):
        book.reschedule(rescheduled(LATER).model_copy(update={"session_date": moment}), at=AT)
    assert book.to_write() == []


def test_the_event_time_is_checked_before_the_date() -> None:
    with pytest.raises(NotStorable, match=r"^event time "):
        SessionBook().book(booked().model_copy(update={"session_date": FAR_PAST}), at=FAR_FUTURE)


@pytest.mark.parametrize("order", ["deducted first", "restored first"])
def test_a_credit_deducted_and_restored_keeps_both_flags(order: str) -> None:
    book = SessionBook()
    if order == "deducted first":
        book.credit_deducted(5)
        book.credit_restored(5)
    else:
        book.credit_restored(5)
        book.credit_deducted(5)
    assert book.credit_marks == {5: CreditMark(deducted=True, restored=True)}


def test_a_verdict_repeated_is_the_same_verdict() -> None:
    book = SessionBook()
    book.credit_deducted(5)
    book.credit_deducted(5)
    book.credit_restored(6)
    assert book.credit_marks == {5: CreditMark(deducted=True), 6: CreditMark(restored=True)}
    assert book.to_write() == []


def test_every_refusal_is_a_rule_broken_and_only_a_taken_id_has_its_own_kind() -> None:
    assert issubclass(BookingRuleBroken, RuleBroken)
    assert SessionIdTaken("x").kind == SESSION_ID_TAKEN
    assert {ChangeRefused("x").kind, SessionNotFound(1).kind, NotStorable("x").kind} == {"rejected"}
