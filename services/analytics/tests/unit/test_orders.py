"""Usage over random orders: the two topics interleaved in any way, cut into batches in any
way (each loaded afresh from what the last left), with copies re-published under new ids,
ends in the same usage and the same last announcement; so does a ledger with holds, a
forfeit, an expiry and events without a balance."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from contracts.envelope import Event
from contracts.events import SessionUsageUpdated, WorkoutLogged, WorkoutStatus
from testkit.events import CLIENT, status_changed

from ..stories import (
    CREDIT_POLICIES_USAGE,
    EXAMPLE_1_USAGE,
    Step,
    credit_policies,
    day,
    example_1,
    logged,
)
from .book import Stored, event

Story = Callable[[], tuple[list[Step], list[Step]]]


def topics_of(story: Story) -> tuple[list[Event[Any]], list[Event[Any]]]:
    workouts, ledger = story()
    return (
        [event(payload, event_id, time) for event_id, time, payload in workouts],
        [event(payload, event_id, time) for event_id, time, payload in ledger],
    )


@st.composite
def interleavings(draw: st.DrawFn, story: Story = example_1) -> list[Event[Any]]:
    """Each topic in its own order, the two merged at random."""
    workouts, ledger = topics_of(story)
    merged = []
    while workouts or ledger:
        from_ledger = bool(ledger) and (not workouts or draw(st.booleans()))
        merged.append((ledger if from_ledger else workouts).pop(0))
    return merged


@st.composite
def batches(draw: st.DrawFn, events: list[Event[Any]]) -> list[list[Event[Any]]]:
    """`events` in order, cut into batches at random places."""
    cuts = sorted(draw(st.sets(st.integers(1, max(len(events) - 1, 1)))))
    edges = [0, *(c for c in cuts if c < len(events)), len(events)]
    return [events[start:end] for start, end in itertools.pairwise(edges)]


def last_usage(stored: Stored) -> dict[str, Any]:
    last = stored.announced[-1]
    assert isinstance(last, SessionUsageUpdated)
    return last.to_json_dict()


def play(events: list[Event[Any]], cut: list[list[Event[Any]]]) -> Stored:
    stored = Stored()
    for batch in cut:
        stored.run(batch)
    assert [e for batch in cut for e in batch] == events
    return stored


@settings(deadline=None)
@given(data=st.data())
def test_every_interleaving_and_batching_ends_in_the_same_usage(data: st.DataObject) -> None:
    events = data.draw(interleavings())
    stored = play(events, data.draw(batches(events)))
    assert last_usage(stored) == {
        "userId": CLIENT,
        **EXAMPLE_1_USAGE,
        "asOf": "2026-01-17T09:00:00Z",
    }


@settings(deadline=None)
@given(data=st.data())
def test_held_and_expired_credits_end_the_same_in_every_interleaving_and_batching(
    data: st.DataObject,
) -> None:
    events = data.draw(interleavings(credit_policies))
    stored = play(events, data.draw(batches(events)))
    assert last_usage(stored) == {
        "userId": CLIENT,
        **CREDIT_POLICIES_USAGE,
        # The last solo workout's: the ledger's solo count after it changes nothing.
        "asOf": "2026-01-14T09:00:00Z",
    }


@settings(deadline=None)
@given(data=st.data())
def test_copies_under_new_ids_change_nothing(data: st.DataObject) -> None:
    events = data.draw(interleavings())
    copies = [
        event(e.payload, f"copy-{n}", e.envelope.time or day(0))
        for n, e in enumerate(data.draw(st.lists(st.sampled_from(events), max_size=6)))
    ]
    once = play(events, [events])
    # A copy comes after its original (a producer re-publishing), before the next event of
    # the same topic: each topic keeps its order.
    with_copies = list(events)
    for copy in copies:
        original = next(n for n, e in enumerate(with_copies) if e.payload == copy.payload)
        topic = _topic_of(copy)
        following = [
            n for n in range(original + 1, len(with_copies)) if _topic_of(with_copies[n]) == topic
        ]
        last = following[0] if following else len(with_copies)
        with_copies.insert(data.draw(st.integers(original + 1, last)), copy)
    again = play(with_copies, data.draw(batches(with_copies)))
    assert last_usage(again) == last_usage(once)
    assert again.usages[CLIENT] == once.usages[CLIENT]


def _topic_of(copy: Event[Any]) -> str:
    return "workouts" if isinstance(copy.payload, WorkoutLogged) else "ledger"


STATUSES = list(WorkoutStatus)


@settings(deadline=None)
@given(data=st.data())
def test_the_counts_are_the_workouts_whose_latest_status_is_completed(
    data: st.DataObject,
) -> None:
    """Any history of status changes over a few workouts, in any batching: each workout
    counts once, under its type, exactly when its latest status is completed."""
    kinds = data.draw(st.lists(st.sampled_from(["solo", "trainer-led"]), min_size=1, max_size=4))
    workouts = [logged(kind, "planned", workout_id=uuid.uuid4()) for kind in kinds]
    history = data.draw(
        st.lists(st.tuples(st.sampled_from(range(len(workouts))), st.sampled_from(STATUSES)))
    )
    latest: dict[int, WorkoutStatus] = {}
    events = []
    for n, (which, status) in enumerate(history):
        events.append(event(status_changed(workouts[which], status), f"change-{n}", day(n)))
        latest[which] = status
    stored = play(events, data.draw(batches(events)))
    completed = [kinds[w] for w, status in latest.items() if status is WorkoutStatus.COMPLETED]
    usage = stored.usages.get(CLIENT)
    solo, trainer_led = (usage.solo_count, usage.trainer_led_count) if usage else (0, 0)
    assert (solo, trainer_led) == (completed.count("solo"), completed.count("trainer-led"))
    if completed:
        last = stored.announced[-1]
        assert isinstance(last, SessionUsageUpdated)
        assert last.total == len(completed)
