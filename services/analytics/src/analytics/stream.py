"""A client's usage as it changes, for browsers and apps that cannot speak Kafka: the
server-sent events of `GET /api/analytics/{userId}/session-usage/events`.

Every transaction that changes a client's usage notifies `USAGE_CHANGED` with the user id at
commit (`analytics.store`), in whichever replica applied it. While a process has streams
open it listens on one connection of its own and wakes the streams of that client; each then
reads the usage and sends it when it differs from what it sent last. Each event carries the
whole usage, so a notification missed costs time, never a change: a stream reads again
whenever listening (re)starts and every `ANALYTICS_USAGE_STREAM_REREAD_SECONDS` besides.

An event's `id` names the usage it carries (a digest of its data). A client that reconnects
with `Last-Event-ID` naming the usage as it still is gets no repeat of it; any other gets the
current usage at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable

from fastapi.sse import ServerSentEvent
from prometheus_client import CollectorRegistry, Gauge

from analytics.store import USAGE_CHANGED
from servicekit.notifications import listen

#: The SSE event name of a usage (`addEventListener("usage", …)` in a browser).
USAGE_EVENT = "usage"
#: How long a client waits before reconnecting (the `retry:` hint), in milliseconds.
RETRY_MILLISECONDS = 2000
#: A listener that lost its connection tries again after this long.
RELISTEN_SECONDS = 1.0

#: Reads a client's usage as the usage endpoint answers it, in JSON.
ReadUsage = Callable[[int], Awaitable[str]]


def event_id_of(data: str) -> str:
    """The id of the event carrying `data`: the same usage, the same id."""
    return hashlib.sha256(data.encode()).hexdigest()[:16]


class UsageStreams:
    """The usage streams open in one process, and the one listener that wakes them."""

    def __init__(
        self,
        database_url: str,
        read: ReadUsage,
        registry: CollectorRegistry,
        *,
        reread_seconds: float,
    ) -> None:
        self.database_url = database_url
        self.read = read
        #: The safety net: a stream reads usage again this often, notified or not.
        self.reread_seconds = reread_seconds
        self._waiting: dict[int, set[asyncio.Event]] = {}
        self._listener: asyncio.Task[None] | None = None
        self._closed = False
        self._open = Gauge(
            "analytics_usage_streams_open",
            "Usage event streams this process is serving.",
            registry=registry,
        )

    def close(self) -> None:
        """The process is stopping: every stream ends (its client reconnects elsewhere)."""
        self._closed = True
        self._wake_all()

    async def events(
        self, user_id: int, *, last_event_id: str | None, expires_at: float | None
    ) -> AsyncIterator[ServerSentEvent]:
        """The client's usage now, then each time it changes, until the caller's token
        expires (`expires_at`), the process stops or the client goes away."""
        changed = asyncio.Event()
        self._watch(user_id, changed)
        try:
            sent = last_event_id
            retry: int | None = RETRY_MILLISECONDS  # said once, with the first message
            while not self._closed:
                if expires_at is not None and time.time() >= expires_at:
                    yield ServerSentEvent(comment="the bearer token has expired")
                    return
                changed.clear()  # before reading: a change committed meanwhile wakes it again
                data = await self.read(user_id)
                event_id = event_id_of(data)
                if event_id != sent:
                    yield ServerSentEvent(
                        event=USAGE_EVENT, id=event_id, raw_data=data, retry=retry
                    )
                    sent, retry = event_id, None
                elif retry is not None:
                    yield ServerSentEvent(comment="no change since the last event", retry=retry)
                    retry = None
                await self._wait(changed, expires_at)
        finally:
            self._unwatch(user_id, changed)

    async def _wait(self, changed: asyncio.Event, expires_at: float | None) -> None:
        timeout = self.reread_seconds
        if expires_at is not None:
            timeout = max(min(timeout, expires_at - time.time()), 0.0)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await changed.wait()

    def _watch(self, user_id: int, changed: asyncio.Event) -> None:
        self._waiting.setdefault(user_id, set()).add(changed)
        self._open.inc()
        if self._listener is None:
            self._listener = asyncio.create_task(
                listen(
                    self.database_url,
                    USAGE_CHANGED,
                    on_notify=self._wake,
                    on_listening=self._wake_all,
                    retry_interval=RELISTEN_SECONDS,
                ),
                name="usage-listener",
            )

    def _unwatch(self, user_id: int, changed: asyncio.Event) -> None:
        """Forget a stream; the last one to go closes the listener's connection."""
        streams = self._waiting[user_id]
        streams.discard(changed)
        if not streams:
            del self._waiting[user_id]
        self._open.dec()
        if not self._waiting and self._listener is not None:
            self._listener.cancel()
            self._listener = None

    def _wake(self, payload: str) -> None:
        if payload.isdigit():
            for changed in self._waiting.get(int(payload), ()):
                changed.set()

    def _wake_all(self) -> None:
        """Listening (re)started, or the process stops: every stream reads again."""
        for streams in self._waiting.values():
            for changed in streams:
                changed.set()
