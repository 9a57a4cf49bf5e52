"""The credits service process: its API and its consumers on one event loop."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import FastAPI, status

from contracts import principals
from contracts.topics import CREDITS_LEDGER
from credits import api, clock
from credits.handlers import HANDLERS
from credits.queries import PARKED_GAUGES, UnknownCursor, parked_figures
from credits.rules import NoForfeit
from credits.settings import Settings
from servicekit.domain import RuleBroken
from servicekit.runner import serve
from servicekit.runtime import ServiceRuntime

#: What this service consumes (operators' replay and rebuild read it too): what its Kafka
#: principal may read.
INPUT_TOPICS = principals.CREDITS.reads
#: What its outbox publishes to (described in its AsyncAPI document).
OUTPUT_TOPICS = principals.CREDITS.writes

#: How the rules' refusals read over HTTP; any other is 409.
REFUSALS: dict[type[RuleBroken], int] = {
    UnknownCursor: status.HTTP_422_UNPROCESSABLE_CONTENT,
    NoForfeit: status.HTTP_404_NOT_FOUND,
}


def create_app(settings: Settings) -> FastAPI:
    runtime = ServiceRuntime(settings)
    store = settings.ledger_store(runtime.outbox, runtime.consumer)
    runtime.consumer.handle(store, HANDLERS)
    runtime.subscribe(*INPUT_TOPICS)
    # Its own announcements first: a rebuild then records each fact as it was announced.
    runtime.reads_history_first(CREDITS_LEDGER)
    runtime.publishes(*OUTPUT_TOPICS)
    runtime.every(
        settings.clock_interval_seconds,
        lambda: clock.pass_time(runtime.database, store, datetime.now(UTC)),
        name="credits-clock",
    )
    runtime.metrics.gauges_at_scrape(PARKED_GAUGES, lambda: parked_figures(runtime.database))
    return runtime.create_app(title="Credits service", routers=[api.router], refusals=REFUSALS)


def main() -> None:
    settings = Settings()
    serve(create_app(settings), settings)
