"""Plain events, and the consumer's round of load, decide and write played on a dict
instead of the database: what `SessionStore` loads for a batch and what stays after it."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import testkit.events
from booking.handlers import HANDLERS
from booking.rules import CreditMark, KnownSession, SessionBook, UnlimitedPackage
from contracts import events
from contracts.envelope import Event, build_event
from servicekit.domain import RuleBroken
from testkit.events import CLIENT, StatusEvent

OTHER = 789
SENT = datetime(2026, 1, 1, 8, tzinfo=UTC)

_serials = itertools.count(1)


def booked(session_id: int = 5, user_id: int = CLIENT, **details: Any) -> events.SessionBooked:
    """Session 5 unless told (`testkit.events.booked`)."""
    return testkit.events.booked(session_id, user_id, **details)


def moved(
    kind: type[StatusEvent], session_id: int = 5, user_id: int = CLIENT, **details: Any
) -> StatusEvent:
    """Session 5 unless told (`testkit.events.moved`)."""
    return testkit.events.moved(kind, session_id, user_id, **details)


def rescheduled(session_date: datetime, session_id: int = 5) -> events.SessionRescheduled:
    return events.SessionRescheduled(session_id=session_id, session_date=session_date)


def event(payload: events.EventPayload, *, time: datetime | None = SENT) -> Event[Any]:
    """`payload` as a consumer receives it, under an id of its own, sent at `time`."""
    envelope = build_event(payload, source="/platform/kiosk", event_id=f"e{next(_serials)}")
    return Event(envelope.model_copy(update={"time": time}), payload)


def decide(book: SessionBook, *payloads: events.EventPayload) -> SessionBook:
    """Each payload's handler on `book`, in order."""
    for payload in payloads:
        HANDLERS[type(payload)](book, event(payload))
    return book


@dataclass
class Stored:
    """What the tables hold between batches."""

    sessions: dict[int, KnownSession] = field(default_factory=dict)
    credit_marks: dict[int, CreditMark] = field(default_factory=dict)
    available: dict[int, int] = field(default_factory=dict)
    unlimited: dict[uuid.UUID, UnlimitedPackage] = field(default_factory=dict)

    def load(self, batch: Iterable[Event[Any]]) -> SessionBook:
        """As `SessionStore.load`: fresh copies of the sessions the session events name."""
        named = {
            e.payload.session_id
            for e in batch
            if isinstance(
                e.payload,
                events.SessionBooked | events.SessionRescheduled | events.SessionStatusEvent,
            )
        }
        return SessionBook(
            sessions={i: replace(self.sessions[i]) for i in sorted(named) if i in self.sessions}
        )

    def write(self, book: SessionBook) -> None:
        """As `SessionStore.write`: upsert what changed; a credit flag once set stays set; a
        client's latest balance replaces theirs; a package is added once."""
        for session in book.to_write():
            self.sessions[session.id] = replace(session, new=False, changed=False)
        for session_id, mark in book.credit_marks.items():
            before = self.credit_marks.get(session_id, CreditMark())
            self.credit_marks[session_id] = CreditMark(
                deducted=before.deducted or mark.deducted,
                restored=before.restored or mark.restored,
            )
        self.available.update(book.available)
        for package_id, package in book.unlimited.items():
            self.unlimited.setdefault(package_id, package)

    def consume(self, batch: Sequence[Event[Any]]) -> list[RuleBroken | None]:
        """One batch as the consumer applies it: a refused event is taken out and the rest
        applied again on a fresh load. Its refusal (None: applied), event by event."""
        refused: dict[int, RuleBroken] = {}
        while True:
            book = self.load(e for n, e in enumerate(batch) if n not in refused)
            broken = _first_refusal(book, batch, refused)
            if broken is None:
                self.write(book)
                return [refused.get(n) for n in range(len(batch))]
            refused[broken[0]] = broken[1]

    def view(self) -> dict[int, tuple[Any, ...]]:
        """Each session as the API reads it, with whether its credit stands deducted."""
        return {
            i: (
                s.user_id,
                s.trainer_id,
                s.session_date,
                s.duration,
                s.status,
                s.location,
                s.notes,
                s.status_reason,
                s.booking_received,
                s.created_at,
                s.updated_at,
            )
            for i, s in sorted(self.sessions.items())
        }


def _first_refusal(
    book: SessionBook, batch: Sequence[Event[Any]], left_out: dict[int, RuleBroken]
) -> tuple[int, RuleBroken] | None:
    for n, each in enumerate(batch):
        handler = HANDLERS.get(type(each.payload))
        if n in left_out or handler is None:  # the consumer ignores a type without handler
            continue
        try:
            handler(book, each)
        except RuleBroken as broken:
            return n, broken
    return None
