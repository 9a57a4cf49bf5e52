"""Serve a service: `python -m <service>` ends here."""

from __future__ import annotations

import logging

import uvicorn
from fastapi import FastAPI

from servicekit.settings import ServiceSettings


def serve(app: FastAPI, settings: ServiceSettings) -> None:
    logging.basicConfig(
        level=settings.log_level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    uvicorn.run(
        app,
        host=settings.http_host,
        port=settings.http_port,
        loop="uvloop",
        http="httptools",
        log_config=None,
        timeout_graceful_shutdown=15,
    )
