"""What a service's rules module may use from servicekit: nothing here touches a server.

The rules decide; the store loads what they need and writes what they decided (see
`servicekit.consumer.BatchStore`). Importing this module pulls in no database, broker or
web framework, so rules are tested without any.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

from contracts.envelope import Event
from contracts.events import EventPayload
from servicekit import tracing

S = TypeVar("S")
#: Decides what one event changes in its batch's state; refuses it with `RuleBroken`.
BatchHandler = Callable[[S, Event[Any]], None]
#: A service's handlers: the event types it applies, each with its handler.
Handlers = Mapping[type[EventPayload], BatchHandler[S]]


class RuleBroken(Exception):
    """An event or a request that breaks a business rule and can never be applied.

    The one way a refusal leaves the rules: the idempotent consumer dead-letters the
    event's record with `reason` (and `kind` in its `dlq-reason-kind` header and in the
    metrics); an API answers with the status its table of refusals gives the class
    (`servicekit.http.answer_refusals`)."""

    #: Names the rule for the metrics and dead letters; subclasses refine it.
    kind: ClassVar[str] = "rejected"

    def __init__(self, reason: str, *, kind: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        if kind is not None:
            self.kind = kind  # type: ignore[misc]  # this refusal's own kind, over the class's


@dataclass(frozen=True, slots=True)
class Announced:
    """An event the rules decided to publish, with the trace context of the event or
    request that caused it: the store writes it to the outbox, where it keeps that context."""

    payload: EventPayload
    event_id: str
    context: tracing.Context | None = field(default_factory=tracing.current)
