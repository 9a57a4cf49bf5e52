"""The session book over random stories: however a story's events are batched the store
ends the same and refuses the same events with the same reasons (the consumer loads each
batch afresh and applies it again without a refused event); the ledger's verdicts and a
booking's place against a status event do not depend on their order; re-published copies
change nothing; a session only ever takes the lifecycle's steps."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from booking.rules import NEXT_STATUSES, REPORTED_SKIPS, CreditMark
from contracts import events
from contracts.sessions import STATUS_AFTER, SessionStatus
from servicekit.domain import RuleBroken
from testkit.events import AT, CLIENT, DATE, TRAINER

from .replay import OTHER, Stored, booked, event, moved, rescheduled

MOVES: list[type[events.SessionStatusEvent]] = [
    events.SessionStarted,
    events.SessionCompleted,
    events.SessionCancelled,
    events.SessionNoShow,
]
SESSION_IDS = st.sampled_from([1, 2, (1 << 40) + 7])
CLIENTS = st.sampled_from([CLIENT, OTHER])
DATES = st.sampled_from([DATE, DATE + timedelta(days=1)])
BALANCE = events.Balance(total=10, used=1, remaining=9)


def _verdict(kind: type[events.EventPayload], session_id: int) -> events.EventPayload:
    if kind is events.SessionCreditDeducted:
        return events.SessionCreditDeducted(
            user_id=CLIENT,
            session_id=session_id,
            trainer_id=TRAINER,
            cause="session-completed",
            balance=BALANCE,
        )
    return events.SessionCreditRestored(
        user_id=CLIENT, session_id=session_id, reason="cancelled", balance=BALANCE
    )


PAYLOADS = st.one_of(
    st.builds(
        lambda i, user, date: booked(i, user, session_date=date), SESSION_IDS, CLIENTS, DATES
    ),
    st.builds(
        lambda kind, i, user, minutes: moved(kind, i, user, at=AT + timedelta(minutes=minutes)),
        st.sampled_from(MOVES),
        SESSION_IDS,
        CLIENTS,
        st.integers(0, 3),
    ),
    st.builds(lambda i, date: rescheduled(date, i), SESSION_IDS, DATES),
    st.builds(
        _verdict,
        st.sampled_from([events.SessionCreditDeducted, events.SessionCreditRestored]),
        SESSION_IDS,
    ),
)


@st.composite
def batched(draw: st.DrawFn, items: list[Any]) -> list[list[Any]]:
    """`items` in their order, in batches of random sizes."""
    batches: list[list[Any]] = []
    rest = list(items)
    while rest:
        size = draw(st.integers(1, len(rest)))
        batches.append(rest[:size])
        rest = rest[size:]
    return batches


def reasons(refusals: list[RuleBroken | None]) -> list[tuple[str, str] | None]:
    return [None if r is None else (r.reason, r.kind) for r in refusals]


def one_at_a_time(payloads: list[events.EventPayload]) -> tuple[Stored, list[Any]]:
    stored = Stored()
    refused = [reasons(stored.consume([event(p)]))[0] for p in payloads]
    return stored, refused


@given(st.data(), st.lists(PAYLOADS, max_size=12))
def test_a_story_ends_the_same_however_it_is_batched(
    data: st.DataObject, payloads: list[events.EventPayload]
) -> None:
    alone, refused_alone = one_at_a_time(payloads)
    stored, refused = Stored(), []
    for batch in data.draw(batched(payloads)):
        refused.extend(reasons(stored.consume([event(p) for p in batch])))
    assert refused == refused_alone
    assert stored.view() == alone.view()
    assert stored.credit_marks == alone.credit_marks


@given(
    st.lists(
        st.tuples(
            st.sampled_from([events.SessionCreditDeducted, events.SessionCreditRestored]),
            SESSION_IDS,
        ),
        min_size=1,
        max_size=10,
    ),
    st.randoms(use_true_random=False),
    st.data(),
)
def test_the_ledgers_verdicts_mark_the_same_in_any_order_and_batching(
    verdicts: list[tuple[type[events.EventPayload], int]], random: Any, data: st.DataObject
) -> None:
    shuffled = list(verdicts)
    random.shuffle(shuffled)
    stored = Stored()
    for batch in data.draw(batched([_verdict(kind, i) for kind, i in shuffled])):
        assert set(reasons(stored.consume([event(p) for p in batch]))) == {None}
    assert stored.credit_marks == {
        i: CreditMark(
            deducted=(events.SessionCreditDeducted, i) in verdicts,
            restored=(events.SessionCreditRestored, i) in verdicts,
        )
        for _, i in verdicts
    }


@given(st.sampled_from(MOVES), st.booleans(), st.booleans(), DATES)
def test_a_booking_and_a_status_event_agree_in_either_order(
    kind: type[events.SessionStatusEvent], booking_first: bool, one_batch: bool, date: datetime
) -> None:
    booking, move = booked(5, duration=30, location="Gym", session_date=date), moved(kind, 5)
    story = [booking, move] if booking_first else [move, booking]
    stored = Stored()
    batches = [story] if one_batch else [[story[0]], [story[1]]]
    for batch in batches:
        assert reasons(stored.consume([event(p) for p in batch])) == [None] * len(batch)
    session = stored.sessions[5]
    assert (session.status, session.session_date, session.duration, session.location) == (
        STATUS_AFTER[kind],
        date,
        30,
        "Gym",
    )
    assert session.booking_received


@given(st.lists(PAYLOADS, max_size=10), st.data())
def test_a_re_published_copy_right_after_its_event_changes_nothing(
    payloads: list[events.EventPayload], data: st.DataObject
) -> None:
    copied = data.draw(st.lists(st.booleans(), min_size=len(payloads), max_size=len(payloads)))
    with_copies: list[events.EventPayload] = []
    for payload, copy in zip(payloads, copied, strict=True):
        with_copies.extend([payload, payload] if copy else [payload])
    plain, _ = one_at_a_time(payloads)
    stored, refused = one_at_a_time(with_copies)
    assert stored.view() == plain.view()
    # A copy is refused exactly when its original was, for the same reason.
    at = 0
    for copy in copied:
        if copy:
            assert refused[at + 1] == refused[at]
        at += 2 if copy else 1


@given(st.lists(st.sampled_from(MOVES), max_size=8))
def test_a_session_only_takes_the_lifecycles_steps(
    moves: list[type[events.SessionStatusEvent]],
) -> None:
    stored = Stored()
    stored.consume([event(booked(5))])
    for n, kind in enumerate(moves):
        before = stored.sessions[5].status
        at = AT + timedelta(minutes=n)
        [refusal] = stored.consume([event(moved(kind, 5, at=at))])
        after = stored.sessions[5].status
        step = (before, STATUS_AFTER[kind])
        allowed = step[0] is step[1] or step[1] in NEXT_STATUSES.get(before, frozenset())
        assert (refusal is None) == (allowed or step in REPORTED_SKIPS)
        assert after == (before if refusal is not None else STATUS_AFTER[kind])
        if before not in NEXT_STATUSES:
            assert after is before  # over: nothing moves it again


LEDGER_KINDS = st.sampled_from(
    [
        events.CreditsGranted,
        events.SessionCreditDeducted,
        events.SessionCreditRestored,
        events.CreditsRunningLow,
        events.CreditDeductionRejected,
    ]
)


def _ledger_event(
    kind: type[events.EventPayload], user_id: int, available: int
) -> events.EventPayload:
    """An event of `kind` for the client, its balance leaving `available` (if it has one)."""
    figures = events.Balance(total=10, used=10 - available, remaining=available)
    if kind is events.CreditsGranted:
        return events.CreditsGranted(user_id=user_id, amount=1, balance=figures)
    if kind is events.SessionCreditDeducted:
        return events.SessionCreditDeducted(
            user_id=user_id,
            session_id=1,
            trainer_id=TRAINER,
            cause="workout-logged",
            balance=figures,
        )
    if kind is events.SessionCreditRestored:
        return events.SessionCreditRestored(
            user_id=user_id, session_id=1, reason="cancelled", balance=figures
        )
    if kind is events.CreditsRunningLow:
        return events.CreditsRunningLow(
            user_id=user_id, threshold=1, balance=figures, caused_by="cause"
        )
    return events.CreditDeductionRejected(user_id=user_id, session_id=1, reason="no booking")


@given(st.lists(st.tuples(LEDGER_KINDS, CLIENTS, st.integers(-3, 10)), max_size=12), st.data())
def test_each_clients_latest_balance_stands_however_the_ledger_is_batched(
    ledger: list[tuple[type[events.EventPayload], int, int]], data: st.DataObject
) -> None:
    """The ledger's events come in their order (one partition per client): the last with a
    balance gives each client's available credits, whatever the batches."""
    payloads = [_ledger_event(*each) for each in ledger]
    stored = Stored()
    for batch in data.draw(batched(payloads)):
        assert set(reasons(stored.consume([event(p) for p in batch]))) <= {None}
    latest = {
        user_id: available
        for kind, user_id, available in ledger
        if kind is not events.CreditDeductionRejected
    }
    assert stored.available == latest


def test_a_refused_event_leaves_its_batch_applied_without_it() -> None:
    stored = Stored()
    refused = stored.consume(
        [
            event(booked(5)),
            event(booked(5, OTHER)),
            event(moved(events.SessionCancelled, 5)),
            event(moved(events.SessionStarted, 5)),
            event(booked(6)),
        ]
    )
    assert reasons(refused) == [
        None,
        (
            f"session 5 is booked for client {CLIENT} with trainer {TRAINER}, "
            f"not client {OTHER} with trainer {TRAINER}",
            "session-id-taken",
        ),
        None,
        ("session 5 is cancelled, which is final: it cannot become in_progress", "rejected"),
        None,
    ]
    assert stored.sessions[5].status is SessionStatus.CANCELLED
    assert stored.sessions[6].status is SessionStatus.SCHEDULED
