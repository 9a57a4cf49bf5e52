"""Serve a service: `python -m <service>` ends here."""

from __future__ import annotations

import uvicorn
from fastapi import FastAPI

from servicekit.logs import configure_logging
from servicekit.settings import ServiceSettings


def serve(app: FastAPI, settings: ServiceSettings) -> None:
    # One JSON object per line for every logger of the process, uvicorn's included.
    configure_logging(service=settings.service_name, level=settings.log_level.upper())
    uvicorn.run(
        app,
        host=settings.http_host,
        port=settings.http_port,
        loop="uvloop",
        http="httptools",
        log_config=None,
        timeout_graceful_shutdown=15,
    )
