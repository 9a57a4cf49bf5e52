"""Plain events, and the consumer's round of load, decide and write played on a dict
instead of the database: what `SessionStore` loads for a batch and what stays after it."""

from __future__ import annotations

import copy
import itertools
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import testkit.events
from booking.handlers import HANDLERS
from booking.rules import (
    CreditMark,
    KnownGroupSession,
    KnownSession,
    SessionBook,
    UnlimitedPackage,
)
from contracts import events
from contracts.envelope import Event, build_event
from servicekit.domain import RuleBroken
from testkit.events import AT, CLIENT, DATE, TRAINER, StatusEvent

OTHER = 789
SENT = datetime(2026, 1, 1, 8, tzinfo=UTC)
#: The group session the group builders name unless told.
GROUP = 7

_NAMING_A_SESSION = (
    events.SessionBooked,
    events.SessionRescheduled,
    events.SessionStatusEvent,
    events.GroupSessionScheduled,
    events.ParticipantJoined,
    events.ParticipantLeft,
    events.GroupSessionCompleted,
    events.GroupSessionCancelled,
)

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


def scheduled(
    capacity: int = 2, session_id: int = GROUP, trainer_id: int = TRAINER, **details: Any
) -> events.GroupSessionScheduled:
    """Group session 7 for two, with TRAINER on DATE, unless told."""
    return events.GroupSessionScheduled(
        session_id=session_id,
        trainer_id=trainer_id,
        session_date=details.pop("session_date", DATE),
        capacity=capacity,
        **details,
    )


def joined(
    user_id: int = CLIENT, session_id: int = GROUP, *, at: datetime = AT, trainer_id: int = TRAINER
) -> events.ParticipantJoined:
    return events.ParticipantJoined(
        session_id=session_id, user_id=user_id, trainer_id=trainer_id, session_date=DATE, at=at
    )


def left(
    user_id: int = CLIENT, session_id: int = GROUP, *, at: datetime = AT, reason: str | None = None
) -> events.ParticipantLeft:
    return events.ParticipantLeft(
        session_id=session_id, user_id=user_id, trainer_id=TRAINER, at=at, reason=reason
    )


def completed(
    attended: Sequence[int] = (),
    no_shows: Sequence[int] = (),
    session_id: int = GROUP,
    *,
    at: datetime = AT,
    trainer_id: int = TRAINER,
) -> events.GroupSessionCompleted:
    return events.GroupSessionCompleted(
        session_id=session_id,
        trainer_id=trainer_id,
        at=at,
        attended=list(attended),
        no_shows=list(no_shows),
    )


def cancelled(
    session_id: int = GROUP, *, at: datetime = AT, reason: str | None = None
) -> events.GroupSessionCancelled:
    return events.GroupSessionCancelled(
        session_id=session_id, trainer_id=TRAINER, at=at, reason=reason
    )


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
    group_sessions: dict[int, KnownGroupSession] = field(default_factory=dict)

    def load(self, batch: Iterable[Event[Any]]) -> SessionBook:
        """As `SessionStore.load`: fresh copies of the sessions and group sessions (with
        their places) the session events name."""
        named = sorted(
            {e.payload.session_id for e in batch if isinstance(e.payload, _NAMING_A_SESSION)}
        )
        return SessionBook(
            sessions={i: replace(self.sessions[i]) for i in named if i in self.sessions},
            group_sessions={
                i: copy.deepcopy(self.group_sessions[i]) for i in named if i in self.group_sessions
            },
        )

    def write(self, book: SessionBook) -> None:
        """As `SessionStore.write`: upsert what changed; a credit flag once set stays set; a
        client's latest balance replaces theirs; a package is added once."""
        for session in book.to_write():
            self.sessions[session.id] = replace(session, new=False, changed=False)
        changed_groups = {g.id for g in book.groups_to_write()}
        changed_groups |= {session_id for session_id, _ in book.places_to_write()}
        for group_id in changed_groups:
            group = copy.deepcopy(book.group_sessions[group_id])
            group.new = group.changed = False
            for place in group.places.values():
                place.new = place.changed = False
            self.group_sessions[group_id] = group
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

    def group_view(self) -> dict[int, tuple[Any, ...]]:
        """Each group session as the API reads it, with its places."""
        return {
            i: (
                g.trainer_id,
                g.session_date,
                g.duration,
                g.capacity,
                g.status,
                g.location,
                g.notes,
                g.status_reason,
                g.schedule_received,
                g.created_at,
                g.updated_at,
                {u: (p.status, p.joined_at, p.left_at) for u, p in sorted(g.places.items())},
            )
            for i, g in sorted(self.group_sessions.items())
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
