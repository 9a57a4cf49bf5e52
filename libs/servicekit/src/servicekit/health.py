"""Liveness and readiness: live means the process answers; ready means its database, Kafka
and the identity provider's keys answer too.

Both are open to anyone (orchestrators probe them without a token), so readiness names what
is down and nothing more: why it is down (hosts, ports, roles, error texts) goes to the
service's log, once each time a dependency goes down."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from fastapi import APIRouter
from fastapi.responses import JSONResponse

log = logging.getLogger(__name__)

Check = Callable[[], Awaitable[None]]

UNAVAILABLE = "unavailable"


def health_router(checks: dict[str, Check]) -> APIRouter:
    router = APIRouter(prefix="/health", tags=["health"])
    down: set[str] = set()

    @router.get("/live")
    async def live() -> dict[str, str]:
        return {"status": "live"}

    @router.get("/ready", responses={503: {"description": "a dependency does not answer"}})
    async def ready() -> JSONResponse:
        results: dict[str, str] = {}
        for name, check in checks.items():
            try:
                await check()
            except Exception as error:
                results[name] = UNAVAILABLE
                if name not in down:
                    down.add(name)
                    log.warning(
                        "not ready: %s is unavailable (%s: %s)", name, type(error).__name__, error
                    )
            else:
                results[name] = "ok"
                down.discard(name)
        is_ready = all(result == "ok" for result in results.values())
        return JSONResponse(
            {"status": "ready" if is_ready else "not ready", "checks": results},
            status_code=200 if is_ready else 503,
        )

    return router
