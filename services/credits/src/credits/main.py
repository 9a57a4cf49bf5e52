"""The credits service process: its API and its consumers on one event loop."""

from __future__ import annotations

from fastapi import FastAPI, status

from contracts import principals
from contracts.topics import CREDITS_LEDGER
from credits import api
from credits.handlers import HANDLERS
from credits.queries import PARKED_GAUGES, UnknownCursor, parked_figures
from credits.settings import Settings
from credits.store import LedgerStore
from servicekit.domain import RuleBroken
from servicekit.runner import serve
from servicekit.runtime import ServiceRuntime

#: What this service consumes (operators' replay and rebuild read it too): what its Kafka
#: principal may read.
INPUT_TOPICS = principals.CREDITS.reads
#: What its outbox publishes to (described in its AsyncAPI document).
OUTPUT_TOPICS = principals.CREDITS.writes

#: How the rules' refusals read over HTTP; any other is 409.
REFUSALS: dict[type[RuleBroken], int] = {UnknownCursor: status.HTTP_422_UNPROCESSABLE_CONTENT}


def create_app(settings: Settings) -> FastAPI:
    runtime = ServiceRuntime(settings)
    runtime.consumer.handle(LedgerStore(runtime.outbox, runtime.consumer), HANDLERS)
    runtime.subscribe(*INPUT_TOPICS)
    # Its own announcements first: a rebuild then records each fact as it was announced.
    runtime.reads_history_first(CREDITS_LEDGER)
    runtime.publishes(*OUTPUT_TOPICS)
    runtime.metrics.gauges_at_scrape(PARKED_GAUGES, lambda: parked_figures(runtime.database))
    return runtime.create_app(title="Credits service", routers=[api.router], refusals=REFUSALS)


def main() -> None:
    settings = Settings()
    serve(create_app(settings), settings)
