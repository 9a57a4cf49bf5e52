"""The workouts service process: its API and its consumers on one event loop."""

from __future__ import annotations

from fastapi import FastAPI, status

from contracts import principals
from servicekit.domain import RuleBroken
from servicekit.runner import serve
from servicekit.runtime import ServiceRuntime
from workouts import api
from workouts.access import NotPermitted, SessionNotVisible, WorkoutNotFound
from workouts.handlers import HANDLERS
from workouts.queries import NotInThisList
from workouts.rules import SessionNamedForSomeoneElse
from workouts.settings import Settings
from workouts.store import LogbookStore

#: What this service consumes (operators' replay and rebuild read it too): what its Kafka
#: principal may read.
INPUT_TOPICS = principals.WORKOUTS.reads
#: What its outbox publishes to (described in its AsyncAPI document).
OUTPUT_TOPICS = principals.WORKOUTS.writes

#: The HTTP status of each refusal; any other (a status change the lifecycle forbids, a
#: session cancelled, missed or booked for someone else while a workout moves, any refusal
#: of a group workout by its group session) is 409.
REFUSALS: dict[type[RuleBroken], int] = {
    NotPermitted: status.HTTP_403_FORBIDDEN,
    SessionNotVisible: status.HTTP_404_NOT_FOUND,
    WorkoutNotFound: status.HTTP_404_NOT_FOUND,
    SessionNamedForSomeoneElse: status.HTTP_422_UNPROCESSABLE_CONTENT,
    NotInThisList: status.HTTP_422_UNPROCESSABLE_CONTENT,
}


def create_app(settings: Settings) -> FastAPI:
    runtime = ServiceRuntime(settings)
    runtime.consumer.handle(LogbookStore(), HANDLERS)
    runtime.subscribe(*INPUT_TOPICS)
    runtime.publishes(*OUTPUT_TOPICS)
    return runtime.create_app(title="Workouts service", routers=[api.router], refusals=REFUSALS)


def main() -> None:
    settings = Settings()
    serve(create_app(settings), settings)
