"""The group sessions over random stories: however a story's events are batched the store
ends the same and refuses the same events with the same reasons, re-published copies change
nothing, a session never holds more joined clients than its places, and a client who gave up
their place never holds it again."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from booking.rules import PlaceStatus
from contracts import events
from testkit.events import AT, DATE

from .replay import (
    GROUP,
    Stored,
    booked,
    cancelled,
    completed,
    event,
    joined,
    left,
    rescheduled,
    scheduled,
)
from .test_orders import batched, one_at_a_time, reasons

SESSION_IDS = st.sampled_from([GROUP, GROUP + 1])
CLIENTS = st.sampled_from([101, 102, 103])
DATES = st.sampled_from([DATE, DATE + timedelta(days=1)])
MOMENTS = st.integers(0, 3).map(lambda minutes: AT + timedelta(minutes=minutes))


@st.composite
def attendance(draw: st.DrawFn) -> tuple[list[int], list[int]]:
    """Who came and who did not, each client at most once."""
    named = draw(st.lists(CLIENTS, unique=True))
    came = draw(st.lists(st.booleans(), min_size=len(named), max_size=len(named)))
    return (
        [c for c, yes in zip(named, came, strict=True) if yes],
        [c for c, yes in zip(named, came, strict=True) if not yes],
    )


PAYLOADS = st.one_of(
    st.builds(lambda i, n: scheduled(n, i), SESSION_IDS, st.integers(1, 3)),
    st.builds(lambda i, c, at: joined(c, i, at=at), SESSION_IDS, CLIENTS, MOMENTS),
    st.builds(lambda i, c, at: left(c, i, at=at), SESSION_IDS, CLIENTS, MOMENTS),
    st.builds(
        lambda i, who, at: completed(who[0], who[1], session_id=i, at=at),
        SESSION_IDS,
        attendance(),
        MOMENTS,
    ),
    st.builds(lambda i, at: cancelled(i, at=at), SESSION_IDS, MOMENTS),
    st.builds(lambda i, date: rescheduled(date, i), SESSION_IDS, DATES),
    # A one-to-one booking now and then, under an id a group session may hold.
    st.builds(booked, SESSION_IDS),
)


@given(st.data(), st.lists(PAYLOADS, max_size=14))
def test_a_group_story_ends_the_same_however_it_is_batched(
    data: st.DataObject, payloads: list[events.EventPayload]
) -> None:
    alone, refused_alone = one_at_a_time(payloads)
    stored, refused = Stored(), []
    for batch in data.draw(batched(payloads)):
        refused.extend(reasons(stored.consume([event(p) for p in batch])))
    assert refused == refused_alone
    assert stored.group_view() == alone.group_view()
    assert stored.view() == alone.view()
    # An id is one kind's or the other's, never both.
    assert not set(stored.sessions) & set(stored.group_sessions)


@given(st.lists(PAYLOADS, max_size=10), st.data())
def test_a_re_published_copy_right_after_its_event_changes_nothing(
    payloads: list[events.EventPayload], data: st.DataObject
) -> None:
    copied = data.draw(st.lists(st.booleans(), min_size=len(payloads), max_size=len(payloads)))
    with_copies: list[events.EventPayload] = []
    for payload, copy in zip(payloads, copied, strict=True):
        with_copies.extend([payload, payload] if copy else [payload])
    plain, _ = one_at_a_time(payloads)
    stored, _ = one_at_a_time(with_copies)
    assert stored.group_view() == plain.group_view()


@given(
    st.integers(1, 3),
    st.lists(st.tuples(st.booleans(), CLIENTS), max_size=12),
)
def test_places_never_outnumber_capacity_and_a_client_who_left_stays_out(
    capacity: int, moves: list[tuple[bool, int]]
) -> None:
    stored = Stored()
    stored.consume([event(scheduled(capacity))])
    gone: set[int] = set()
    for joining, client in moves:
        payload: Any = joined(client) if joining else left(client)
        [refusal] = stored.consume([event(payload)])
        places = stored.group_sessions[GROUP].places
        holding = [u for u, p in places.items() if p.status is PlaceStatus.JOINED]
        assert len(holding) <= capacity
        if not joining and refusal is None:
            gone.add(client)
        assert not gone & set(holding)
