"""The credits service process: its API and its consumers on one event loop."""

from __future__ import annotations

from fastapi import FastAPI

from contracts import principals
from contracts.topics import CREDITS_LEDGER
from credits import api, consumers
from credits.parked import PARKED_GAUGES, parked_figures
from credits.settings import Settings
from servicekit.runner import serve
from servicekit.runtime import ServiceRuntime

#: What this service consumes (operators' replay and rebuild read it too): what its Kafka
#: principal may read.
INPUT_TOPICS = principals.CREDITS.reads
#: What its outbox publishes to (described in its AsyncAPI document).
OUTPUT_TOPICS = principals.CREDITS.writes


def create_app(settings: Settings) -> FastAPI:
    runtime = ServiceRuntime(settings)
    consumers.register(runtime.consumer, runtime.outbox)
    runtime.subscribe(*INPUT_TOPICS)
    # Its own announcements first: a rebuild then records each fact as it was announced.
    runtime.reads_history_first(CREDITS_LEDGER)
    runtime.publishes(*OUTPUT_TOPICS)
    runtime.metrics.gauges_at_scrape(PARKED_GAUGES, lambda: parked_figures(runtime.database))
    return runtime.create_app(title="Credits service", routers=[api.router])


def main() -> None:
    settings = Settings()
    serve(create_app(settings), settings)
