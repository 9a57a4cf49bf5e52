"""Liveness and readiness: live means the process answers; ready means its database and
Kafka answer too."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import APIRouter
from fastapi.responses import JSONResponse

Check = Callable[[], Awaitable[None]]


def health_router(checks: dict[str, Check]) -> APIRouter:
    router = APIRouter(prefix="/health", tags=["health"])

    @router.get("/live")
    async def live() -> dict[str, str]:
        return {"status": "live"}

    @router.get("/ready", responses={503: {"description": "a dependency does not answer"}})
    async def ready() -> JSONResponse:
        results: dict[str, str] = {}
        for name, check in checks.items():
            try:
                await check()
                results[name] = "ok"
            except Exception as error:
                results[name] = f"unavailable: {type(error).__name__}: {error}"
        is_ready = all(result == "ok" for result in results.values())
        return JSONResponse(
            {"status": "ready" if is_ready else "not ready", "checks": results},
            status_code=200 if is_ready else 503,
        )

    return router
