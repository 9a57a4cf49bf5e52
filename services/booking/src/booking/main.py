"""The booking service process: its API and its consumers on one event loop."""

from __future__ import annotations

from fastapi import FastAPI, status

from booking import api, group_api
from booking.commands import BookingCommands
from booking.handlers import HANDLERS
from booking.queries import AfterNotInList
from booking.rules import (
    AttendanceUntold,
    ChangeRefused,
    GroupSessionNotFound,
    NoCreditAvailable,
    NotAParticipant,
    NotPermitted,
    NotStorable,
    PlaceNotFound,
    RejoinRefused,
    SessionFull,
    SessionIdsExhausted,
    SessionNotFound,
)
from booking.settings import Settings
from booking.store import SessionStore
from contracts import principals
from servicekit.domain import RuleBroken
from servicekit.runner import serve
from servicekit.runtime import ServiceRuntime

#: What this service consumes (operators' replay and rebuild read it too): what its Kafka
#: principal may read.
INPUT_TOPICS = principals.BOOKING.reads
#: What its outbox publishes to (described in its AsyncAPI document).
OUTPUT_TOPICS = principals.BOOKING.writes

#: How the rules' refusals read over HTTP; any other is 409.
REFUSALS: dict[type[RuleBroken], int] = {
    SessionNotFound: status.HTTP_404_NOT_FOUND,
    GroupSessionNotFound: status.HTTP_404_NOT_FOUND,
    PlaceNotFound: status.HTTP_404_NOT_FOUND,
    NotPermitted: status.HTTP_403_FORBIDDEN,
    ChangeRefused: status.HTTP_409_CONFLICT,
    SessionFull: status.HTTP_409_CONFLICT,
    RejoinRefused: status.HTTP_409_CONFLICT,
    NotAParticipant: status.HTTP_409_CONFLICT,
    AttendanceUntold: status.HTTP_409_CONFLICT,
    NoCreditAvailable: status.HTTP_409_CONFLICT,
    NotStorable: status.HTTP_422_UNPROCESSABLE_CONTENT,
    AfterNotInList: status.HTTP_422_UNPROCESSABLE_CONTENT,
    SessionIdsExhausted: status.HTTP_503_SERVICE_UNAVAILABLE,
}


def create_app(settings: Settings) -> FastAPI:
    runtime = ServiceRuntime(settings)
    store = SessionStore()
    runtime.consumer.handle(store, HANDLERS)
    runtime.subscribe(*INPUT_TOPICS)
    runtime.publishes(*OUTPUT_TOPICS)
    app = runtime.create_app(
        title="Booking service", routers=[api.router, group_api.router], refusals=REFUSALS
    )
    app.state.commands = BookingCommands(
        runtime.outbox, runtime.consumer, store, policy=settings.cancellation_policy()
    )
    return app


def main() -> None:
    settings = Settings()
    serve(create_app(settings), settings)
