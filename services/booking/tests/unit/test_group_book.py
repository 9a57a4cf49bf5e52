"""The group session book's rules: scheduling, places taken and given up, completing,
cancelling and moving a group session, each from its event, and every refusal with its
reason and the kind its dead letter gets."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from booking.rules import (
    DEFAULT_DURATION,
    STAND_IN_CAPACITY,
    AttendanceUntold,
    ChangeRefused,
    GroupSessionNotFound,
    GroupSessionStatus,
    NotAParticipant,
    NotStorable,
    PlaceNotFound,
    PlaceStatus,
    RejoinRefused,
    SessionBook,
    SessionFull,
    SessionIdTaken,
    attendance,
    refuse_group_status_change,
)
from contracts import events
from contracts.session_ids import SESSION_ID_TAKEN
from contracts.sessions import SessionStatus
from testkit.events import AT, CLIENT, DATE, TRAINER

from .replay import (
    GROUP,
    OTHER,
    SENT,
    booked,
    cancelled,
    completed,
    decide,
    joined,
    left,
    moved,
    rescheduled,
    scheduled,
)

G = GroupSessionStatus
P = PlaceStatus
A, B, C = 101, 102, 103
LATER = datetime(2026, 2, 1, 9, tzinfo=UTC)


def stored(*payloads: events.EventPayload, capacity: int = 2) -> SessionBook:
    """A book holding group session 7, scheduled (and `payloads` applied) before this batch."""
    book = decide(SessionBook(), scheduled(capacity), *payloads)
    group = book.group_sessions[GROUP]
    group.new = group.changed = False
    for place in group.places.values():
        place.new = place.changed = False
    return book


def statuses(book: SessionBook) -> dict[int, P]:
    return {u: p.status for u, p in book.group_sessions[GROUP].places.items()}


# --- scheduling -------------------------------------------------------------------------------


def test_a_schedule_makes_a_scheduled_group_session_dated_by_its_event() -> None:
    book = SessionBook()
    book.schedule_group(scheduled(5, duration=45, location="Studio A", notes="mats"), at=SENT)
    group = book.group_sessions[GROUP]
    assert (group.trainer_id, group.status, group.capacity) == (TRAINER, G.SCHEDULED, 5)
    assert (group.session_date, group.duration, group.location, group.notes) == (
        DATE,
        45,
        "Studio A",
        "mats",
    )
    assert (group.created_at, group.updated_at, group.schedule_received) == (SENT, SENT, True)
    assert group.places == {}
    assert book.groups_to_write() == [group]
    assert book.to_write() == []


def test_the_same_schedule_again_changes_nothing() -> None:
    book = stored()
    book.schedule_group(scheduled(), at=AT)
    book.schedule_group(
        scheduled(session_date=DATE.astimezone(timezone(timedelta(hours=2)))), at=AT
    )
    assert book.groups_to_write() == []
    assert book.group_sessions[GROUP].updated_at == SENT


@pytest.mark.parametrize(
    "details",
    [
        {"session_date": LATER},
        {"duration": 30},
        {"capacity": 3},
        {"location": "Gym"},
        {"notes": "x"},
    ],
)
def test_another_schedule_under_a_scheduled_id_is_an_id_taken(details: dict[str, Any]) -> None:
    book = stored()
    capacity = details.pop("capacity", 2)
    with pytest.raises(SessionIdTaken, match="cannot reuse its id") as taken:
        book.schedule_group(scheduled(capacity, **details), at=AT)
    assert taken.value.kind == SESSION_ID_TAKEN


def test_an_id_taken_names_both_schedules() -> None:
    with pytest.raises(SessionIdTaken) as taken:
        stored().schedule_group(scheduled(3, session_date=LATER), at=AT)
    assert taken.value.reason == (
        "group session 7 is already scheduled for 2026-01-15T10:00:00+00:00 (60 min, 2 places);"
        " a schedule for 2026-02-01T09:00:00+00:00 (60 min, 3 places) cannot reuse its id"
    )


def test_a_schedule_with_another_trainer_is_an_id_taken() -> None:
    with pytest.raises(SessionIdTaken) as taken:
        stored().schedule_group(scheduled(trainer_id=OTHER), at=AT)
    assert taken.value.reason == (
        f"group session 7 is scheduled with trainer {TRAINER}, not trainer {OTHER}"
    )


def test_a_schedule_under_a_one_to_one_sessions_id_is_an_id_taken() -> None:
    book = decide(SessionBook(), booked(GROUP))
    with pytest.raises(SessionIdTaken) as taken:
        book.schedule_group(scheduled(), at=AT)
    assert taken.value.reason == (
        f"session 7 is a one-to-one session booked for client {CLIENT} with trainer {TRAINER},"
        " not a group session"
    )
    assert taken.value.kind == SESSION_ID_TAKEN
    assert book.group_sessions == {}


@pytest.mark.parametrize(
    "one_to_one",
    [
        booked(GROUP),
        moved(events.SessionCancelled, GROUP),
        moved(events.SessionStarted, GROUP),
    ],
    ids=["booking", "cancellation", "start"],
)
def test_a_one_to_one_event_under_a_group_sessions_id_is_an_id_taken(
    one_to_one: events.EventPayload,
) -> None:
    book = stored()
    with pytest.raises(SessionIdTaken) as taken:
        decide(book, one_to_one)
    assert taken.value.reason == (
        f"session 7 is a group session with trainer {TRAINER}, not a one-to-one session"
    )
    assert book.sessions == {}


@pytest.mark.parametrize(
    "payload",
    [
        joined(),
        left(),
        completed([CLIENT]),
        cancelled(),
    ],
    ids=["join", "leave", "completion", "cancellation"],
)
def test_a_group_event_under_a_one_to_one_sessions_id_is_an_id_taken(
    payload: events.EventPayload,
) -> None:
    book = decide(SessionBook(), booked(GROUP))
    with pytest.raises(SessionIdTaken, match="is a one-to-one session booked for client"):
        decide(book, payload)
    assert book.group_sessions == {}


# --- places -----------------------------------------------------------------------------------


def test_a_join_takes_a_place_when_it_says() -> None:
    book = stored()
    book.join(joined(A, at=AT))
    place = book.group_sessions[GROUP].places[A]
    assert (place.status, place.joined_at, place.left_at, place.new) == (P.JOINED, AT, None, True)
    assert book.places_to_write() == [(GROUP, place)]
    # A place is written on its own: the session's row stays as it was.
    assert book.groups_to_write() == []
    assert book.group_sessions[GROUP].places_taken == 1


def test_joining_again_changes_nothing() -> None:
    book = stored(joined(A))
    book.join(joined(A, at=AT + timedelta(hours=1)))
    assert book.places_to_write() == []
    assert book.group_sessions[GROUP].places[A].joined_at == AT


def test_a_full_session_refuses_a_join() -> None:
    book = stored(joined(A), joined(B))
    with pytest.raises(SessionFull) as full:
        book.join(joined(C))
    assert full.value.reason == "group session 7 is full: 2 of 2 places taken"
    assert full.value.kind == "rejected"
    assert isinstance(full.value, ChangeRefused)
    assert C not in book.group_sessions[GROUP].places


def test_a_place_given_up_is_free_for_another_client() -> None:
    book = stored(joined(A), joined(B), left(A))
    book.join(joined(C))
    assert statuses(book) == {A: P.LEFT, B: P.JOINED, C: P.JOINED}


def test_a_client_who_left_may_not_join_again() -> None:
    book = stored(joined(A), left(A), capacity=5)
    with pytest.raises(RejoinRefused) as refused:
        book.join(joined(A))
    assert refused.value.reason == f"client {A} left group session 7 and cannot join it again"


@pytest.mark.parametrize("ending", [completed([A]), cancelled()], ids=["completed", "cancelled"])
def test_a_session_that_is_over_takes_no_join_and_no_leave(ending: events.EventPayload) -> None:
    book = stored(joined(A), ending)
    status = book.group_sessions[GROUP].status
    with pytest.raises(ChangeRefused) as no_join:
        book.join(joined(B))
    assert no_join.value.reason == (
        f"group session 7 is {status}: only a scheduled group session takes participants"
    )
    with pytest.raises(ChangeRefused) as no_leave:
        book.leave(left(A))
    assert no_leave.value.reason == (
        f"group session 7 is {status}: a participant leaves only a scheduled group session"
    )


def test_a_join_or_leave_for_a_session_never_scheduled_is_refused() -> None:
    for payload in (joined(), left()):
        with pytest.raises(GroupSessionNotFound) as missing:
            decide(SessionBook(), payload)
        assert missing.value.reason == "group session 7 was never scheduled"


def test_a_join_naming_another_trainer_is_an_id_taken() -> None:
    with pytest.raises(SessionIdTaken, match=f"not trainer {OTHER}$"):
        stored().join(joined(A, trainer_id=OTHER))


def test_leaving_gives_up_the_place_when_it_says() -> None:
    book = stored(joined(A))
    later = AT + timedelta(hours=2)
    book.leave(left(A, at=later, reason="ill"))
    place = book.group_sessions[GROUP].places[A]
    assert (place.status, place.joined_at, place.left_at, place.changed) == (
        P.LEFT,
        AT,
        later,
        True,
    )
    assert book.group_sessions[GROUP].places_taken == 0


def test_leaving_again_changes_nothing() -> None:
    book = stored(joined(A), left(A))
    book.leave(left(A, at=AT + timedelta(days=1)))
    assert book.places_to_write() == []


def test_leaving_a_place_never_taken_is_refused() -> None:
    with pytest.raises(PlaceNotFound) as missing:
        stored(joined(A)).leave(left(B))
    assert missing.value.reason == f"client {B} has no place in group session 7"


# --- completing, cancelling, moving -----------------------------------------------------------


def test_a_completion_marks_each_place_as_it_says() -> None:
    book = stored(joined(A), joined(B), joined(C), left(C), capacity=3)
    later = AT + timedelta(hours=1)
    book.complete_group(completed([A], [B], at=later))
    group = book.group_sessions[GROUP]
    assert (group.status, group.updated_at, group.changed) == (G.COMPLETED, later, True)
    assert statuses(book) == {A: P.ATTENDED, B: P.NO_SHOW, C: P.LEFT}
    assert group.places[A].joined_at == AT
    assert [user for _, place in book.places_to_write() for user in [place.user_id]] == [A, B]
    assert group.places_taken == 2


def test_a_completion_naming_a_client_without_a_place_gives_them_one_as_it_says() -> None:
    book = stored(joined(A), joined(B), left(B))
    book.complete_group(completed([A, B], [C]))
    assert statuses(book) == {A: P.ATTENDED, B: P.ATTENDED, C: P.NO_SHOW}
    newcomer = book.group_sessions[GROUP].places[C]
    assert (newcomer.joined_at, newcomer.left_at, newcomer.new) == (None, None, True)


def test_a_completion_that_leaves_a_participant_out_is_refused() -> None:
    book = stored(joined(A), joined(B))
    with pytest.raises(AttendanceUntold) as untold:
        book.complete_group(completed([A]))
    assert untold.value.reason == (
        f"group session 7 completed without saying whether client {B} attended: every"
        " participant is in attended or noShows"
    )
    assert book.group_sessions[GROUP].status is G.SCHEDULED


def test_completed_again_changes_nothing_whatever_it_names() -> None:
    book = stored(joined(A), completed([A]))
    book.complete_group(completed([], [A, B], at=AT + timedelta(hours=1)))
    assert book.groups_to_write() == []
    assert book.places_to_write() == []


@pytest.mark.parametrize(
    ("first", "then", "target"),
    [
        (completed(), cancelled(), "cancelled"),
        (cancelled(), completed(), "completed"),
    ],
    ids=["completed then cancelled", "cancelled then completed"],
)
def test_a_session_that_is_over_stays_so(
    first: events.EventPayload, then: events.EventPayload, target: str
) -> None:
    book = stored(first)
    status = book.group_sessions[GROUP].status
    with pytest.raises(ChangeRefused) as refused:
        decide(book, then)
    assert refused.value.reason == (
        f"group session 7 is {status}, which is final: it cannot become {target}"
    )


def test_a_cancellation_keeps_its_reason_and_the_places_as_they_were() -> None:
    book = stored(joined(A), joined(B), left(B))
    book.cancel_group(cancelled(reason="flooded"))
    group = book.group_sessions[GROUP]
    assert (group.status, group.status_reason, group.updated_at) == (G.CANCELLED, "flooded", AT)
    assert statuses(book) == {A: P.JOINED, B: P.LEFT}
    assert book.places_to_write() == []
    book.group_sessions[GROUP].changed = False
    book.cancel_group(cancelled(at=AT + timedelta(hours=1), reason="again"))
    assert book.groups_to_write() == []


@pytest.mark.parametrize("ending", [completed([A], [B]), cancelled(reason="kiosk")])
def test_an_ending_for_a_session_never_scheduled_makes_it_known_with_stand_ins(
    ending: events.GroupSessionCompleted | events.GroupSessionCancelled,
) -> None:
    book = decide(SessionBook(), ending)
    group = book.group_sessions[GROUP]
    assert group.new
    assert not group.schedule_received
    assert (group.trainer_id, group.session_date, group.duration, group.capacity) == (
        TRAINER,
        AT,
        DEFAULT_DURATION,
        STAND_IN_CAPACITY,
    )
    assert (group.created_at, group.updated_at) == (AT, AT)
    if isinstance(ending, events.GroupSessionCompleted):
        assert (group.status, statuses(book)) == (G.COMPLETED, {A: P.ATTENDED, B: P.NO_SHOW})
    else:
        assert (group.status, group.status_reason, group.places) == (G.CANCELLED, "kiosk", {})


def test_its_schedule_then_fills_in_date_and_capacity_and_leaves_status_and_places() -> None:
    book = decide(SessionBook(), completed([A]))
    book.schedule_group(scheduled(4, session_date=LATER, location="Studio B"), at=SENT)
    group = book.group_sessions[GROUP]
    assert (group.status, group.session_date, group.capacity, group.location) == (
        G.COMPLETED,
        LATER,
        4,
        "Studio B",
    )
    assert group.schedule_received
    assert (group.created_at, group.updated_at) == (AT, SENT)
    assert statuses(book) == {A: P.ATTENDED}
    # From then on it is scheduled like any other: the same schedule changes nothing.
    group.new = group.changed = False
    book.schedule_group(scheduled(4, session_date=LATER, location="Studio B"), at=AT)
    assert book.groups_to_write() == []


def test_a_reschedule_naming_a_group_session_moves_it() -> None:
    book = stored(joined(A))
    book.reschedule(rescheduled(LATER, GROUP), at=AT)
    group = book.group_sessions[GROUP]
    assert (group.session_date, group.updated_at, group.changed) == (LATER, AT, True)
    assert book.sessions == {}
    group.changed = False
    book.reschedule(rescheduled(LATER, GROUP), at=AT + timedelta(hours=1))
    assert book.groups_to_write() == []


def test_only_a_scheduled_group_session_is_rescheduled() -> None:
    book = stored(cancelled())
    with pytest.raises(ChangeRefused) as refused:
        book.reschedule(rescheduled(LATER, GROUP), at=AT)
    assert refused.value.reason == (
        "group session 7 is cancelled: only a scheduled group session can be rescheduled"
    )


FAR_PAST = datetime(1899, 12, 31, tzinfo=UTC)


def test_moments_no_group_session_can_hold_are_refused_by_name() -> None:
    book = stored(joined(A))
    with pytest.raises(NotStorable, match=r"^event time "):
        book.schedule_group(scheduled(), at=FAR_PAST)
    with pytest.raises(NotStorable, match=r"^sessionDate "):
        book.schedule_group(scheduled().model_copy(update={"session_date": FAR_PAST}), at=SENT)
    dated_too_early: list[events.EventPayload] = [
        payload.model_copy(update={"at": FAR_PAST})
        for payload in (joined(B), left(A), completed([A]), cancelled())
    ]
    for payload in dated_too_early:
        with pytest.raises(NotStorable, match=r"^at "):
            decide(book, payload)
    with pytest.raises(NotStorable, match=r"^sessionDate "):
        book.reschedule(rescheduled(AT, GROUP).model_copy(update={"session_date": FAR_PAST}), at=AT)
    assert book.groups_to_write() == []
    assert book.places_to_write() == []


# --- what the API asks of the rules -----------------------------------------------------------


def test_everyone_still_joined_but_the_no_shows_attended() -> None:
    group = stored(joined(C), joined(A), joined(B), left(B), capacity=3).group_sessions[GROUP]
    assert attendance(group, frozenset({C})) == [A]
    assert attendance(group, frozenset()) == [A, C]


@pytest.mark.parametrize("stranger", [B, OTHER], ids=["left", "never joined"])
def test_a_no_show_without_a_place_is_refused(stranger: int) -> None:
    group = stored(joined(A), joined(B), left(B)).group_sessions[GROUP]
    with pytest.raises(NotAParticipant) as refused:
        attendance(group, frozenset({A, stranger}))
    assert refused.value.reason == (
        f"noShows names client {stranger}, who holds no place in group session 7: only its"
        " participants can be marked as not showing"
    )


@pytest.mark.parametrize(
    ("current", "target", "changes"),
    [
        (G.SCHEDULED, G.COMPLETED, True),
        (G.SCHEDULED, G.CANCELLED, True),
        (G.COMPLETED, G.COMPLETED, False),
        (G.CANCELLED, G.CANCELLED, False),
    ],
)
def test_a_group_session_goes_from_scheduled_to_an_end_once(
    current: G, target: G, changes: bool
) -> None:
    group = stored().group_sessions[GROUP]
    group.status = current
    assert refuse_group_status_change(group, target) is changes


def test_nothing_takes_a_group_session_back_to_scheduled() -> None:
    group = stored(cancelled()).group_sessions[GROUP]
    with pytest.raises(ChangeRefused, match="which is final: it cannot become scheduled"):
        refuse_group_status_change(group, G.SCHEDULED)


def test_only_a_taken_id_has_a_dead_letter_kind_of_its_own() -> None:
    refusals = [
        GroupSessionNotFound(1),
        PlaceNotFound(1, 2),
        SessionFull("x"),
        RejoinRefused("x"),
        NotAParticipant("x"),
        AttendanceUntold("x"),
    ]
    assert {r.kind for r in refusals} == {"rejected"}


def test_one_to_one_sessions_are_untouched_by_group_sessions_beside_them() -> None:
    book = stored(joined(A))
    decide(book, booked(5), rescheduled(LATER, 5), moved(events.SessionCancelled, 5))
    assert (book.sessions[5].status, book.sessions[5].session_date) == (
        SessionStatus.CANCELLED,
        LATER,
    )
    assert book.group_sessions[GROUP].session_date == DATE
    assert statuses(book) == {A: P.JOINED}
