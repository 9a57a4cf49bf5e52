"""HTTP behaviour every service shares."""

from __future__ import annotations

import math

from fastapi import Request, status
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from servicekit import tracing


class RequestContext:
    """Runs each HTTP request in its trace and correlation context (`servicekit.tracing`), so
    that its logs, the access log and the events it writes to the outbox carry them; the
    response says which correlation id it got (`X-Correlation-Id`).

    Plain ASGI rather than Starlette's BaseHTTPMiddleware: the context variable is then set
    in the very task that runs the endpoint and sends the response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        context = tracing.from_request(Headers(scope=scope))
        correlation_id = context.correlation_id or ""

        async def send_with_correlation_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)[tracing.CORRELATION_ID_HTTP] = correlation_id
            await send(message)

        with tracing.bound(context):
            await self.app(scope, receive, send_with_correlation_id)


async def refuse_invalid_request(request: Request, error: Exception) -> JSONResponse:
    """FastAPI's 422, safe for every input. Python's JSON parser accepts `NaN` and `Infinity`,
    and FastAPI's own handler echoes them back in `input`, which no JSON can hold: the reply
    would be a 500. They are echoed as the strings the client wrote instead."""
    assert isinstance(error, RequestValidationError)
    return JSONResponse(
        status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
        content={"detail": _json_safe(jsonable_encoder(error.errors()))},
    )


def _json_safe(value: object) -> object:
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dict):
        return {key: _json_safe(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_json_safe(item) for item in value]
    return value
