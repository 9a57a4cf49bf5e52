"""HTTP behaviour every service shares."""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping

from fastapi import FastAPI, Request, status
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from psycopg.errors import TransactionRollback
from sqlalchemy import exc as sa_exc
from starlette.datastructures import Headers, MutableHeaders
from starlette.exceptions import HTTPException
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from servicekit import tracing
from servicekit.domain import RuleBroken

log = logging.getLogger(__name__)


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


#: What is read of a refused body, at the most, before answering 413.
DRAINED_AT_MOST = 64 * 1024 * 1024


class BodySizeLimit:
    """Answers 413 with a JSON body to a request whose body is larger than `max_bytes`,
    before anything reads it: at once when its Content-Length says so, else once that many
    bytes have arrived (a chunked body is gathered here, up to the limit, then handed on).
    Starlette's own limit answers in plain text when Content-Length says too much; the
    contract wants every refusal in JSON."""

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = Headers(scope=scope).get("content-length")
        if length is not None:
            if not length.isdigit() or int(length) > self.max_bytes:
                await self._refuse(scope, receive, send)
            else:
                # The server never hands on more than Content-Length announced.
                await self.app(scope, receive, send)
            return
        gathered = bytearray()
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break  # the client went away
            gathered += message.get("body", b"")
            if len(gathered) > self.max_bytes:
                await self._refuse(scope, receive, send)
                return
            if not message.get("more_body", False):
                break
        handed_on = False

        async def replay() -> Message:
            nonlocal handed_on
            if handed_on:
                return await receive()
            handed_on = True
            return {"type": "http.request", "body": bytes(gathered), "more_body": False}

        await self.app(scope, replay, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Most clients read no answer before they have sent their whole body: what is left
        # of it is read and dropped first (within reason), so that they see the 413 rather
        # than a connection reset.
        drained, finished = 0, False
        while not finished and drained <= DRAINED_AT_MOST:
            message = await receive()
            drained += len(message.get("body", b""))
            finished = message["type"] != "http.request" or not message.get("more_body", False)
        response = JSONResponse(
            status_code=status.HTTP_413_CONTENT_TOO_LARGE,
            content={"detail": f"the request body is larger than {self.max_bytes} bytes"},
            headers={} if finished else {"connection": "close"},
        )
        await response(scope, receive, send)


async def refuse_invalid_request(request: Request, error: Exception) -> JSONResponse:
    """FastAPI's 422, safe for every input. Python's JSON parser accepts `NaN`, `Infinity`
    and lone surrogates, and FastAPI's own handler echoes them back in `input`, which no
    JSON can hold: the reply would be a 500. They are echoed as text instead."""
    assert isinstance(error, RequestValidationError)
    return JSONResponse(
        status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
        content={"detail": _json_safe(jsonable_encoder(error.errors()))},
    )


def _json_safe(value: object) -> object:
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, str):
        # A lone surrogate (`"\ud800"` in the JSON) cannot be encoded back: echoed escaped.
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(value, dict):
        return {key: _json_safe(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_json_safe(item) for item in value]
    return value


#: The status of a refusal whose class has none of its own in a service's table.
DEFAULT_REFUSAL_STATUS = status.HTTP_409_CONFLICT


def answer_refusals(app: FastAPI, statuses: Mapping[type[RuleBroken], int]) -> None:
    """Answer every refusal of the rules (`RuleBroken`) with the status of its nearest
    class in `statuses` (409 when none), and its reason as the `detail`: one table per
    service, so routes never translate errors themselves."""

    async def answer(request: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, RuleBroken)
        code = next(
            (statuses[kind] for kind in type(error).__mro__ if kind in statuses),
            DEFAULT_REFUSAL_STATUS,
        )
        return JSONResponse(status_code=code, content={"detail": error.reason})

    app.add_exception_handler(RuleBroken, answer)


#: Failures of the database rather than of the request: it refuses connections ("too many
#: clients already"), does not answer, drops the connection, or the pool has none free
#: within its timeout (`servicekit.db.POOL_TIMEOUT`).
DATABASE_UNAVAILABLE: tuple[type[Exception], ...] = (
    sa_exc.OperationalError,
    sa_exc.InterfaceError,
    sa_exc.TimeoutError,
)
#: What a caller is asked to wait, in seconds, before it tries again.
RETRY_AFTER_SECONDS = 1
DATABASE_UNAVAILABLE_DETAIL = "the database is unavailable; try again shortly"
CONFLICT_DETAIL = "a concurrent change got in the way; try again"


def answer_database_unavailable(app: FastAPI) -> None:
    """Answer a request the database cannot serve now with 503, a JSON `detail` and
    `Retry-After`, not a 500 with a traceback: nothing was changed (the transaction rolled
    back), so the caller may simply try again. A serialization failure or deadlock says
    so; anything else says the database is unavailable."""

    async def answer(request: Request, error: Exception) -> JSONResponse:
        cause = getattr(error, "orig", None) or error
        conflict = isinstance(cause, TransactionRollback)
        detail = CONFLICT_DETAIL if conflict else DATABASE_UNAVAILABLE_DETAIL
        first_line = next(iter(str(cause).strip().splitlines()), "")
        log.warning(
            "%s %s: answered 503 (%s: %s)",
            request.method,
            request.url.path,
            type(cause).__name__,
            first_line,
        )
        return JSONResponse(
            status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
            content={"detail": detail},
            headers={"retry-after": str(RETRY_AFTER_SECONDS)},
        )

    for kind in DATABASE_UNAVAILABLE:
        app.add_exception_handler(kind, answer)


#: The methods a 405 may name in `Allow`.
HTTP_METHODS = ("DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT")


async def answer_method_not_allowed(request: Request, error: Exception) -> JSONResponse:
    """405 naming in `Allow` every method the path takes. Starlette names only those of the
    first route matching the path, while a path often has a route per method (`GET` and
    `POST /api/sessions`)."""
    routes = request.app.router.routes
    allowed = [
        method
        for method in HTTP_METHODS
        if any(
            route.matches({**request.scope, "method": method})[0] is Match.FULL for route in routes
        )
    ]
    detail = error.detail if isinstance(error, HTTPException) else "Method Not Allowed"
    return JSONResponse(
        status_code=status.HTTP_405_METHOD_NOT_ALLOWED,
        content={"detail": detail},
        headers={"Allow": ", ".join(allowed)},
    )
