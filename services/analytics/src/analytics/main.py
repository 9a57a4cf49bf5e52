"""The analytics service process: its API and its consumers on one event loop."""

from __future__ import annotations

from functools import partial

from fastapi import FastAPI

from analytics import api, dashboard
from analytics.handlers import HANDLERS
from analytics.settings import Settings
from analytics.store import UsageStore
from analytics.stream import UsageStreams
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
    runtime.consumer.handle(UsageStore(runtime.outbox), HANDLERS)
    runtime.subscribe(*INPUT_TOPICS)
    runtime.publishes(*OUTPUT_TOPICS)
    app = runtime.create_app(title="Analytics service", routers=[api.router])
    # The page and its files hold no data: open, like `/docs` (its script sends the token).
    app.include_router(dashboard.router)
    streams = UsageStreams(
        runtime.database.url,
        partial(api.read_usage_json, runtime.database),
        runtime.metrics.registry,
        reread_seconds=settings.usage_stream_reread_seconds,
    )
    runtime.on_stopping(streams.close)
    app.state.usage_streams = streams
    return app


def main() -> None:
    settings = Settings()
    serve(create_app(settings), settings)
