"""The ledger's rules over random orders of one client's events, and random cuts of them
into batches (the store loads each batch's state afresh): what the platform promises
whatever is duplicated, replayed or reordered on the way. Batches are decided on what the
store would load for them (`tables.Tables`)."""

from __future__ import annotations

import itertools
import uuid
from dataclasses import dataclass
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from contracts.events import (
    EventPayload,
    SessionCancelled,
    SessionCompleted,
    SessionCreditDeducted,
    SessionNoShow,
    SessionStarted,
)
from credits.rules import EntryKind
from testkit.events import CLIENT, booked, moved, purchase, workout

from .tables import Tables
from .test_rules import called_off, event

#: How a session's story ends; cancelled and missed sessions are never delivered.
ENDINGS = ("delivered", "completed", "scheduled", "cancelled", "no-show")


@dataclass(frozen=True)
class Story:
    """One client's events, in the order they happened; `delivered` the sessions that were."""

    events: list[tuple[str, EventPayload]]
    delivered: frozenset[int]


@st.composite
def stories(draw: st.DrawFn, *, calling_off: bool = False) -> Story:
    """Purchases, and sessions each booked then ended one way; with `calling_off`, also
    workouts called off (whose effect depends on whether the booking came first)."""
    happened: list[tuple[str, EventPayload]] = []
    for number in range(draw(st.integers(0, 2))):
        happened.append((f"purchase-{number}", purchase(draw(st.integers(1, 5)), f"p{number}")))
    delivered = set()
    for session_id in range(1, draw(st.integers(1, 5)) + 1):
        ending = draw(st.sampled_from(ENDINGS))
        happened.append((f"booked-{session_id}", booked(session_id)))
        if ending in ("delivered", "completed"):
            happened.append((f"started-{session_id}", moved(SessionStarted, session_id)))
            delivered.add(session_id)
        if ending == "delivered":
            status = draw(st.sampled_from(["in_progress", "completed"]))
            for copy in range(draw(st.integers(1, 2))):
                happened.append(
                    (f"workout-{session_id}-{copy}", workout(session_id, status=status))
                )
        if ending == "completed":
            happened.append((f"completed-{session_id}", moved(SessionCompleted, session_id)))
        if ending in ("cancelled", "no-show"):
            planned = workout(session_id, status="planned")
            happened.append((f"planned-{session_id}", planned))
            kind = SessionCancelled if ending == "cancelled" else SessionNoShow
            happened.append((f"ended-{session_id}", moved(kind, session_id)))
        if calling_off and draw(st.booleans()):
            logged = workout(session_id, workout_id=uuid.uuid4())
            happened += [
                (f"logged-{session_id}", logged),
                (f"off-{session_id}", called_off(logged)),
            ]
    happened.append(("solo", workout(None)))
    return Story(happened, frozenset(delivered))


@st.composite
def deliveries(draw: st.DrawFn, story: Story) -> list[list[tuple[str, EventPayload]]]:
    """The story's events in any order, some of them twice, cut into batches."""
    shuffled = draw(st.permutations(story.events))
    again = draw(st.lists(st.sampled_from(story.events), max_size=3)) if story.events else []
    received = shuffled + again
    cuts = sorted(draw(st.sets(st.integers(1, max(len(received) - 1, 1)), max_size=4)))
    bounds = [0, *cuts, len(received)]
    return [received[start:end] for start, end in itertools.pairwise(bounds)]


@dataclass
class Outcome:
    balance: tuple[int, int]
    entries: dict[uuid.UUID, dict[str, Any]]
    parked: int
    deductions_announced: list[int]


def play(batches: list[list[tuple[str, EventPayload]]]) -> Outcome:
    """Each event id applied once (the consumer drops duplicates), a batch at a time on what
    the store loads for it."""
    seen: set[str] = set()
    tables = Tables()
    for batch in batches:
        fresh = []
        for event_id, payload in batch:
            if event_id not in seen:
                seen.add(event_id)
                fresh.append(event(payload, event_id))
        tables.apply(fresh)
    balance = tables.balance_of(CLIENT)
    deducted = (a.payload for a in tables.announced)
    return Outcome(
        (balance.total, balance.used),
        tables.entries,
        len(tables.parked),
        [d.session_id for d in deducted if isinstance(d, SessionCreditDeducted)],
    )


def in_order(story: Story) -> list[list[tuple[str, EventPayload]]]:
    return [story.events]


@settings(deadline=None)
@given(st.data(), stories())
def test_every_order_and_batching_ends_in_the_same_ledger(
    data: st.DataObject, story: Story
) -> None:
    expected = play(in_order(story))
    got = play(data.draw(deliveries(story)))
    assert got.balance == expected.balance
    kinds = {id: (row["kind"], row["amount"]) for id, row in got.entries.items()}
    assert kinds == {id: (row["kind"], row["amount"]) for id, row in expected.entries.items()}
    assert got.parked == expected.parked == 0
    assert sorted(got.deductions_announced) == sorted(story.delivered)


@settings(deadline=None)
@given(st.data(), stories(calling_off=True))
def test_no_order_deducts_twice_for_a_session_and_the_balance_is_its_entries(
    data: st.DataObject, story: Story
) -> None:
    got = play(data.draw(deliveries(story)))
    deductions = [r["session_id"] for r in got.entries.values() if r["kind"] == EntryKind.DEDUCTION]
    assert len(deductions) == len(set(deductions))
    assert sorted(got.deductions_announced) == sorted(deductions)
    restorations = [
        r["session_id"] for r in got.entries.values() if r["kind"] == EntryKind.RESTORATION
    ]
    assert len(restorations) == len(set(restorations))
    assert set(restorations) <= set(deductions)
    total, used = got.balance
    grants = sum(r["amount"] for r in got.entries.values() if r["kind"] == EntryKind.GRANT)
    assert total == grants
    assert total - used == sum(row["amount"] for row in got.entries.values())
    assert set(deductions) <= {s for _, p in story.events if (s := getattr(p, "session_id", None))}
