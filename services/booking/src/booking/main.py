"""The booking service process: its API and its consumers on one event loop."""

from __future__ import annotations

from fastapi import FastAPI

from booking import api, consumers
from booking.settings import Settings
from contracts import principals
from servicekit.runner import serve
from servicekit.runtime import ServiceRuntime

#: What this service consumes (operators' replay and rebuild read it too): what its Kafka
#: principal may read.
INPUT_TOPICS = principals.BOOKING.reads
#: What its outbox publishes to (described in its AsyncAPI document).
OUTPUT_TOPICS = principals.BOOKING.writes


def create_app(settings: Settings) -> FastAPI:
    runtime = ServiceRuntime(settings)
    consumers.register(runtime.consumer)
    runtime.subscribe(*INPUT_TOPICS)
    runtime.publishes(*OUTPUT_TOPICS)
    app = runtime.create_app(title="Booking service", routers=[api.router])
    api.add_refusal_handlers(app)
    return app


def main() -> None:
    settings = Settings()
    serve(create_app(settings), settings)
