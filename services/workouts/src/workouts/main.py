"""The workouts service process: its API and its consumers on one event loop."""

from __future__ import annotations

from fastapi import FastAPI

from servicekit.runner import serve
from servicekit.runtime import ServiceRuntime
from workouts.settings import Settings


def create_app(settings: Settings) -> FastAPI:
    runtime = ServiceRuntime(settings)
    return runtime.create_app(title="Workouts service")


def main() -> None:
    settings = Settings()
    serve(create_app(settings), settings)
