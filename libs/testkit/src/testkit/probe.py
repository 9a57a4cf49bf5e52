"""A probe service's consumer parts, for servicekit's own tests: it applies PackagePurchased
events by recording their ids in a table `applied (event_id, purchase_id)`, with hooks for
what a test needs a handler or a store to do (refuse, fail, be slow, announce); and a probe
runtime that reaches no server, for the tests of its HTTP app alone."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.envelope import Event
from contracts.events import EventPayload, PackagePurchased
from contracts.services import CREDITS, Service
from servicekit.domain import Announced, BatchHandler
from servicekit.outbox import Outbox
from servicekit.runtime import ServiceRuntime
from servicekit.settings import ServiceSettings, settings_config


class ProbeSettings(ServiceSettings):
    """A probe service's settings: credits' names (environment, port), another service."""

    model_config = settings_config(CREDITS)
    service: ClassVar[Service] = CREDITS


def serverless_runtime() -> ServiceRuntime:
    """A probe runtime whose database and Kafka are nowhere (port 1): its app answers what
    needs neither; never start it."""
    return ServiceRuntime(
        ProbeSettings(
            database_url="postgresql+psycopg://nobody@127.0.0.1:1/none",
            kafka_bootstrap_servers="127.0.0.1:1",
        )
    )


CREATE_APPLIED = "create table applied (event_id text primary key, purchase_id text)"
_RECORD_APPLIED = text("insert into applied values (:id, :purchase)")


@dataclass
class ProbeBatch:
    """What one batch's handlers decided: the events applied, the events to announce; and
    every new event the batch holds, for a handler whose decision depends on its batch."""

    events: Sequence[Event[Any]] = ()
    applied: list[Event[Any]] = field(default_factory=list)
    announced: list[Announced] = field(default_factory=list)


#: Runs in the handler, before the event counts as applied: may raise, or announce.
Decide = Callable[[ProbeBatch, Event[Any]], None]
#: Runs in the store's write for each applied event, before it is recorded: may wait or fail.
BeforeWrite = Callable[[AsyncSession, Event[Any]], Awaitable[None]]


@dataclass
class ProbeStore:
    before_write: BeforeWrite | None = None
    outbox: Outbox | None = None

    async def load(self, db: AsyncSession, events: Sequence[Event[Any]]) -> ProbeBatch:
        return ProbeBatch(events)

    async def write(self, db: AsyncSession, state: ProbeBatch) -> None:
        for event in state.applied:
            if self.before_write is not None:
                await self.before_write(db, event)
        if state.applied:
            await db.execute(
                _RECORD_APPLIED,
                [{"id": e.id, "purchase": e.payload.purchase_id} for e in state.applied],
            )
        if self.outbox is not None and state.announced:
            await self.outbox.insert(db, self.outbox.prepare_decided(state.announced))


def probe_handlers(
    decide: Decide | None = None,
) -> dict[type[EventPayload], BatchHandler[ProbeBatch]]:
    def on_purchase(batch: ProbeBatch, event: Event[Any]) -> None:
        if decide is not None:
            decide(batch, event)
        batch.applied.append(event)

    return {PackagePurchased: on_purchase}
