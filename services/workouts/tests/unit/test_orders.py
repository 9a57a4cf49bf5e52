"""The logbook's rules over random orders of events, and random cuts of them into batches
(the store loads each batch's state afresh from what the batches before it wrote): the same
view of a session and of a group session's places in any order, and workouts read back the
same however they are batched."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from contracts import events
from contracts.sessions import SessionStatus
from servicekit.domain import RuleBroken
from testkit.events import CLIENT, TRAINER, booked, moved
from workouts import rules

from ..groups import GROUP, REJOINED_AT, called_off, completed, joined, left, scheduled
from .test_logbook import OTHER, SENT, A, apply, changed, logged

#: Every story booking allows for one session, as the events it sends in order.
STORIES: list[list[events.EventPayload]] = [
    [booked(7)],
    [booked(7), moved(events.SessionStarted, 7)],
    [booked(7), moved(events.SessionStarted, 7), moved(events.SessionCompleted, 7)],
    [booked(7), moved(events.SessionStarted, 7), moved(events.SessionCancelled, 7)],
    [booked(7), moved(events.SessionCancelled, 7)],
    [booked(7), moved(events.SessionNoShow, 7)],
]

#: Stories booking allows for one group session, as the events it sends in order, and the
#: places each ends with.
GROUP_STORIES: list[tuple[list[events.EventPayload], dict[int, rules.PlaceStatus]]] = [
    (
        [scheduled(), joined(1), joined(2), joined(3), joined(4), left(4)],
        {**dict.fromkeys([1, 2, 3], rules.PlaceStatus.JOINED), 4: rules.PlaceStatus.LEFT},
    ),
    (
        [scheduled(), joined(1), joined(2), joined(3), left(3), completed([1], [2])],
        {1: rules.PlaceStatus.ATTENDED, 2: rules.PlaceStatus.NO_SHOW, 3: rules.PlaceStatus.LEFT},
    ),
    (
        [scheduled(), joined(1), left(1), joined(1, at=REJOINED_AT)],
        {1: rules.PlaceStatus.JOINED},
    ),
    (
        [scheduled(), joined(1), left(1), joined(1, at=REJOINED_AT), completed([1])],
        {1: rules.PlaceStatus.ATTENDED},
    ),
    (
        [scheduled(), joined(1), joined(2), left(2), called_off()],
        dict.fromkeys([1, 2], rules.PlaceStatus.CANCELLED),
    ),
]

#: The forward paths of a workout logged planned (see `ALLOWED_STATUS_CHANGES`).
PATHS: list[list[events.WorkoutStatus]] = [
    [],
    [events.WorkoutStatus.IN_PROGRESS],
    [events.WorkoutStatus.IN_PROGRESS, events.WorkoutStatus.COMPLETED],
    [events.WorkoutStatus.IN_PROGRESS, events.WorkoutStatus.CANCELLED],
    [events.WorkoutStatus.COMPLETED],
    [events.WorkoutStatus.SKIPPED],
    [events.WorkoutStatus.CANCELLED],
]


@st.composite
def cuts(draw: st.DrawFn, items: list[Any]) -> list[list[Any]]:
    """`items` in their order, cut into batches at random places."""
    ends = sorted(draw(st.sets(st.integers(1, max(len(items) - 1, 1)))))
    starts = [0, *ends]
    return [items[a:b] for a, b in zip(starts, [*ends, len(items)], strict=True) if items[a:b]]


class Stored:
    """What the store would hold between batches, and how it loads a batch's logbook."""

    def __init__(self) -> None:
        self.sessions: dict[int, rules.BookedSessionFacts] = {}
        self.groups: dict[int, rules.GroupSessionFacts] = {}
        self.places: dict[tuple[int, int], rules.Place] = {}
        self.workouts: dict[Any, rules.KnownWorkout] = {}
        self.refused: list[events.EventPayload] = []

    def apply_batch(self, batch: list[tuple[events.EventPayload, int]]) -> None:
        """Each event with the minutes after `SENT` it was sent; a refused one is taken out
        and the batch applied again without it, as the consumer does."""
        while True:
            logbook = rules.Logbook(
                sessions=dict(self.sessions),
                groups=dict(self.groups),
                workouts={k: replace(w) for k, w in self.workouts.items()},
            )
            for (session_id, user_id), place in self.places.items():
                logbook.places.setdefault(session_id, {})[user_id] = place
            for position, (payload, minute) in enumerate(batch):
                try:
                    apply(logbook, payload, at=SENT + timedelta(minutes=minute))
                except RuleBroken:
                    self.refused.append(payload)
                    batch = batch[:position] + batch[position + 1 :]
                    break
            else:
                break
        for session_id in logbook.sessions_changed:
            self.sessions[session_id] = logbook.sessions[session_id]
        for session_id in logbook.groups_changed:
            self.groups[session_id] = logbook.groups[session_id]
        for session_id, user_id in logbook.places_changed:
            self.places[session_id, user_id] = logbook.places[session_id][user_id]
        self.workouts.update(logbook.workouts)


@given(st.data())
def test_a_session_ends_as_its_story_in_any_order_and_batches(data: st.DataObject) -> None:
    story = data.draw(st.sampled_from(STORIES))
    shuffled = data.draw(st.permutations(story))
    stored = Stored()
    for batch in data.draw(cuts(list(shuffled))):
        stored.apply_batch([(payload, 0) for payload in batch])
    last = rules.reported_by(story[-1])
    assert last is not None
    assert stored.sessions == {7: last}
    assert stored.refused == []


@given(st.data())
def test_a_group_session_ends_as_its_story_in_any_order_and_batches(data: st.DataObject) -> None:
    story, places = data.draw(st.sampled_from(GROUP_STORIES))
    shuffled = data.draw(st.permutations(story))
    stored = Stored()
    for batch in data.draw(cuts(list(shuffled))):
        stored.apply_batch([(payload, 0) for payload in batch])
    cancelled = isinstance(story[-1], events.GroupSessionCancelled)
    assert stored.groups == {GROUP: rules.GroupSessionFacts(GROUP, TRAINER, cancelled)}
    assert {key: place.status for key, place in stored.places.items()} == {
        (GROUP, user_id): status for user_id, status in places.items()
    }
    assert stored.refused == []


@given(st.data())
def test_the_first_event_about_a_session_decides_whose_it_is_in_any_order(
    data: st.DataObject,
) -> None:
    story = data.draw(st.sampled_from(STORIES))
    for_other: list[Any] = [
        booked(7, user_id=OTHER),
        moved(events.SessionStarted, 7, user_id=OTHER),
        moved(events.SessionCancelled, 7, user_id=OTHER),
    ]
    others = data.draw(st.lists(st.sampled_from(for_other), min_size=1, max_size=3))
    arrived = data.draw(st.permutations([*story, *others]))
    stored = Stored()
    for batch in data.draw(cuts(list(arrived))):
        stored.apply_batch([(payload, 0) for payload in batch])
    owner = arrived[0].user_id
    accepted = [e for e in arrived if e.user_id == owner]
    assert stored.refused == [e for e in arrived if e.user_id != owner]
    status = SessionStatus.SCHEDULED
    for event in accepted:
        reported = rules.reported_by(event)
        assert reported is not None
        status = rules.furthest_status(status, reported.status)
    assert {s: (f.user_id, f.status) for s, f in stored.sessions.items()} == {7: (owner, status)}
    assert stored.sessions[7].user_id in (CLIENT, OTHER)


@given(st.data())
def test_a_workout_read_back_is_the_same_however_its_events_are_batched(
    data: st.DataObject,
) -> None:
    path = data.draw(st.sampled_from(PATHS))
    previous = [events.WorkoutStatus.PLANNED, *path]
    arrived: list[events.EventPayload] = [
        logged(),
        *[changed(status, before) for before, status in zip(previous, path, strict=False)],
    ]
    # Replays: the workout logged again, under other ids, anywhere after the first.
    replays = data.draw(st.lists(st.integers(1, len(arrived)), max_size=2))
    for at in sorted(replays, reverse=True):
        arrived.insert(at, logged())
    timed = [(payload, minute) for minute, payload in enumerate(arrived)]
    one_batch, batched = Stored(), Stored()
    one_batch.apply_batch(timed)
    for batch in data.draw(cuts(timed)):
        batched.apply_batch(batch)
    final = path[-1] if path else events.WorkoutStatus.PLANNED
    totals = rules.totals_of(logged().exercises)
    assert one_batch.workouts == batched.workouts == {A: rules.KnownWorkout(final, totals)}
    assert rules.experience_points(totals, final) == (
        34 if final is events.WorkoutStatus.COMPLETED else 0
    )
    assert one_batch.refused == batched.refused == []


@given(st.data())
def test_changes_read_before_their_workout_is_logged_are_refused_in_any_order(
    data: st.DataObject,
) -> None:
    path = data.draw(st.sampled_from(PATHS))
    previous = [events.WorkoutStatus.PLANNED, *path]
    changes = [changed(status, before) for before, status in zip(previous, path, strict=False)]
    workout_events: list[events.WorkoutLogged | events.WorkoutStatusChanged] = [logged(), *changes]
    arrived = data.draw(st.permutations(workout_events))
    stored = Stored()
    for batch in data.draw(cuts([(payload, 0) for payload in arrived])):
        stored.apply_batch(batch)
    logged_at = next(i for i, e in enumerate(arrived) if e.event_type == "WorkoutLogged")
    assert stored.refused == list(arrived[:logged_at])
    after = [e.status for e in arrived[logged_at + 1 :]]
    assert stored.workouts[A].status is (after[-1] if after else events.WorkoutStatus.PLANNED)
