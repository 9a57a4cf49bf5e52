"""Serve a service: `python -m <service>` ends here."""

from __future__ import annotations

import socket

import uvicorn
from fastapi import FastAPI

from servicekit.logs import configure_logging
from servicekit.memory import return_freed_memory
from servicekit.runtime import ServiceRuntime
from servicekit.settings import ServiceSettings


class _Server(uvicorn.Server):
    """Tells the service it is stopping before waiting for the responses still open: an
    event stream never finishes on its own, and would hold the shutdown until it timed out."""

    def __init__(self, config: uvicorn.Config, runtime: ServiceRuntime) -> None:
        super().__init__(config)
        self.runtime = runtime

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        self.runtime.begin_stopping()
        await super().shutdown(sockets)


def serve(app: FastAPI, settings: ServiceSettings) -> None:
    return_freed_memory()
    # One JSON object per line for every logger of the process, uvicorn's included.
    configure_logging(service=settings.service_name, level=settings.log_level.upper())
    config = uvicorn.Config(
        app,
        host=settings.http_host,
        port=settings.http_port,
        loop="uvloop",
        http="httptools",
        log_config=None,
        timeout_graceful_shutdown=15,
    )
    _Server(config, app.state.runtime).run()
