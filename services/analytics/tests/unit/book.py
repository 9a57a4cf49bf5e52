"""Plain events and an in-memory stand-in for the store, for the rules' unit tests: what
`UsageStore` loads for a batch and keeps after it, without a database."""

from __future__ import annotations

import itertools
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from analytics.handlers import HANDLERS
from analytics.rules import ClientUsage, KnownWorkout, UsageBook
from contracts.envelope import Event, build_event
from contracts.events import EventPayload, WorkoutLogged, WorkoutStatusChanged

from ..stories import WEEK_1


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
    """What the database holds between batches: usage rows, workouts, who trains whom."""

    usages: dict[int, ClientUsage] = field(default_factory=dict)
    workouts: dict[uuid.UUID, KnownWorkout] = field(default_factory=dict)
    trainer_clients: set[tuple[int, int]] = field(default_factory=set)
    announced: list[EventPayload] = field(default_factory=list)

    def load(self, events: Iterable[Event[Any]]) -> UsageBook:
        """As `UsageStore.load`: every client the events name (a row made if missing),
        their completed workouts counted from the stored ones, the workouts named."""
        book = UsageBook()
        named = list(events)
        for user_id in sorted({e.payload.user_id for e in named}):
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
        return book

    def write(self, book: UsageBook) -> None:
        """As `UsageStore.write`: the changed workouts and usages, the pairs, the outbox."""
        for workout_id in book.changed_workouts:
            self.workouts[workout_id] = book.workouts[workout_id]
        for user_id, usage in book.usages.items():
            if usage.changed:
                self.usages[user_id] = usage
        self.trainer_clients |= book.trainer_clients
        self.announced.extend(a.payload for a in book.announcements(numbered_ids()))

    def run(self, batch: list[Event[Any]]) -> None:
        self.write(apply(self.load(batch), *batch))
