"""The analytics service process: its API and its consumers on one event loop."""

from __future__ import annotations

from fastapi import FastAPI

from analytics import api, consumers
from analytics.settings import Settings
from contracts import principals
from servicekit.runner import serve
from servicekit.runtime import ServiceRuntime

#: What this service consumes (operators' replay and rebuild read it too): what its Kafka
#: principal may read.
INPUT_TOPICS = principals.ANALYTICS.reads
#: What its outbox publishes to (described in its AsyncAPI document).
OUTPUT_TOPICS = principals.ANALYTICS.writes


def create_app(settings: Settings) -> FastAPI:
    runtime = ServiceRuntime(settings)
    consumers.register(runtime.consumer, runtime.outbox)
    runtime.subscribe(*INPUT_TOPICS)
    runtime.publishes(*OUTPUT_TOPICS)
    return runtime.create_app(title="Analytics service", routers=[api.router])


def main() -> None:
    settings = Settings()
    serve(create_app(settings), settings)
