"""The booking service process: its API and its consumers on one event loop."""

from __future__ import annotations

from fastapi import FastAPI

from booking.settings import Settings
from servicekit.runner import serve
from servicekit.runtime import ServiceRuntime


def create_app(settings: Settings) -> FastAPI:
    runtime = ServiceRuntime(settings)
    return runtime.create_app(title="Booking service")


def main() -> None:
    settings = Settings()
    serve(create_app(settings), settings)
