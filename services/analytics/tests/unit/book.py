"""Plain events and an in-memory stand-in for the store, for the rules' unit tests: what
`UsageStore` loads for a batch and keeps after it, without a database."""

from __future__ import annotations

import itertools
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import Any

from analytics.handlers import HANDLERS
from analytics.rules import ClientUsage, KnownWorkout, Place, TrainerSession, UsageBook
from contracts.envelope import Event, build_event
from contracts.events import EventPayload, SessionType, WorkoutLogged, WorkoutStatusChanged
from contracts.topics import BOOKING_SESSIONS

from ..stories import WEEK_1

SESSION_EVENT_TYPES = frozenset(BOOKING_SESSIONS.event_types)


def event(
    payload: EventPayload, event_id: str | None = None, time: datetime = WEEK_1
) -> Event[Any]:
    return Event(build_event(payload, source="/tests", event_id=event_id, time=time), payload)


def numbered_ids() -> Callable[[], str]:
    """Announcement ids, `announcement-1` and on, instead of the store's random ones."""
    ids = (f"announcement-{n}" for n in itertools.count(1))
    return lambda: next(ids)


def apply(book: UsageBook, *events: Event[Any]) -> UsageBook:
    """Each event through its handler, as the consumer runs them (no handler: ignored)."""
    for applied in events:
        handler = HANDLERS.get(type(applied.payload))
        if handler is not None:
            handler(book, applied)
    return book


@dataclass
class Stored:
    """What the database holds between batches: usage rows, workouts, who trains whom, the
    studio's days, the booked sessions and their places."""

    usages: dict[int, ClientUsage] = field(default_factory=dict)
    workouts: dict[uuid.UUID, KnownWorkout] = field(default_factory=dict)
    trainer_clients: set[tuple[int, int]] = field(default_factory=set)
    announced: list[EventPayload] = field(default_factory=list)
    sessions: dict[int, TrainerSession] = field(default_factory=dict)
    places: dict[tuple[int, int], Place] = field(default_factory=dict)
    #: The studio's completed workouts per day and type, as `workout_days` keeps them.
    days: Counter[tuple[date, SessionType]] = field(default_factory=Counter)

    def load(self, events: Iterable[Event[Any]]) -> UsageBook:
        """As `UsageStore.load`: every client the events name (a row made if missing),
        their completed workouts counted from the stored ones, the workouts named."""
        book = UsageBook()
        named = list(events)
        usage_events = [e for e in named if e.type not in SESSION_EVENT_TYPES]
        for user_id in sorted({e.payload.user_id for e in usage_events}):
            usage = self.usages.get(user_id, ClientUsage(user_id))
            book.usages[user_id] = replace(usage, changed=False)
            book.completed[user_id] = Counter(
                kind
                for workout in self.workouts.values()
                if workout.user_id == user_id and (kind := workout.counted()) is not None
            )
        for e in named:
            if isinstance(e.payload, WorkoutLogged | WorkoutStatusChanged):
                known = self.workouts.get(e.payload.workout_id)
                if known is not None:
                    book.workouts[e.payload.workout_id] = replace(known)
        session_ids = {e.payload.session_id for e in named if e.type in SESSION_EVENT_TYPES}
        for session_id in session_ids:
            if (session := self.sessions.get(session_id)) is not None:
                book.sessions[session_id] = replace(session)
        book.places.update(
            (key, place) for key, place in self.places.items() if key[0] in session_ids
        )
        return book

    def write(self, book: UsageBook) -> None:
        """As `UsageStore.write`: the changed workouts and usages, the pairs, the outbox."""
        for workout_id in book.changed_workouts:
            self.workouts[workout_id] = book.workouts[workout_id]
        for user_id, usage in book.usages.items():
            if usage.changed:
                self.usages[user_id] = usage
        self.trainer_clients |= book.trainer_clients
        self.days.update(book.day_changes)
        for session_id in book.changed_sessions:
            self.sessions[session_id] = book.sessions[session_id]
        for key in book.changed_places:
            self.places[key] = book.places[key]
        self.announced.extend(a.payload for a in book.announcements(numbered_ids()))

    def run(self, batch: list[Event[Any]]) -> None:
        self.write(apply(self.load(batch), *batch))
