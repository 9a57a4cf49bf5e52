"""What wakes a usage stream, on a real database: the notification each change of usage sends
at commit (and no other), a listener that lost its connection catching up, and the slow
re-read behind both. Streams are read here as their generator yields them; the HTTP side
(the doors, the wire format, disconnects and shutdown) is tested on real processes in
tests/system/test_usage_stream.py."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
from fastapi import FastAPI
from fastapi.sse import ServerSentEvent
from prometheus_client import CollectorRegistry

from analytics.store import USAGE_CHANGED
from analytics.stream import UsageStreams, event_id_of
from servicekit.db import libpq_url
from servicekit.runtime import ServiceRuntime
from testkit.events import CLIENT
from testkit.helpers import Deliver, eventually

from .stories import OTHER_CLIENT, logged

#: Long enough for any wait here: none is timed.
PATIENCE = 20.0
#: No re-read on its own: what reaches a stream was woken by a notification.
NEVER = 3600.0


@dataclass
class Watching:
    """A stream driven as the server drives it: read on and on by a task of its own."""

    received: asyncio.Queue[ServerSentEvent]
    task: asyncio.Task[None]

    async def next_event(self) -> ServerSentEvent:
        async with asyncio.timeout(PATIENCE):
            return await self.received.get()

    async def end(self) -> list[ServerSentEvent]:
        """Wait for the stream to end on its own; what it sent meanwhile."""
        async with asyncio.timeout(PATIENCE):
            await self.task
        return [self.received.get_nowait() for _ in range(self.received.qsize())]


@asynccontextmanager
async def watching(
    streams: UsageStreams, user_id: int, *, last_event_id: str | None = None
) -> AsyncIterator[Watching]:
    """A stream of `user_id`'s usage, read until the block ends (as a client goes away)."""
    received: asyncio.Queue[ServerSentEvent] = asyncio.Queue()

    async def read_on() -> None:
        async for event in streams.events(user_id, last_event_id=last_event_id, expires_at=None):
            await received.put(event)

    task = asyncio.create_task(read_on())
    try:
        yield Watching(received, task)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


class Usages:
    """Usage as a stream reads it, set by the test, counting the reads."""

    def __init__(self) -> None:
        self.current: dict[int, str] = {}
        self.reads = 0

    async def read(self, user_id: int) -> str:
        self.reads += 1
        return self.current.get(user_id, "none")


def streams_on(runtime: ServiceRuntime, usages: Usages, reread: float = NEVER) -> UsageStreams:
    return UsageStreams(
        runtime.database.url, usages.read, CollectorRegistry(), reread_seconds=reread
    )


@pytest.fixture
def usages() -> Usages:
    return Usages()


@pytest.fixture
def streams(runtime: ServiceRuntime, usages: Usages) -> UsageStreams:
    """Streams reading `usages`, woken by notifications only."""
    return streams_on(runtime, usages)


def connected(runtime: ServiceRuntime) -> Awaitable[psycopg.AsyncConnection[Any]]:
    """A connection of the test's own to the service's database."""
    return psycopg.AsyncConnection.connect(libpq_url(runtime.database.url), autocommit=True)


async def notify(runtime: ServiceRuntime, payload: str) -> None:
    async with await connected(runtime) as connection:
        await connection.execute("select pg_notify(%s, %s)", (USAGE_CHANGED, payload))


async def listening(runtime: ServiceRuntime) -> list[int]:
    """The backends of the runtime's role listening for usage changes."""
    async with await connected(runtime) as connection:
        cursor = await connection.execute(
            "select pid from pg_stat_activity where datname = current_database() and query = %s",
            (f"LISTEN {USAGE_CHANGED}",),
        )
        return [row[0] for row in await cursor.fetchall()]


async def test_a_change_of_usage_notifies_its_client_at_commit_and_nothing_else_does(
    runtime: ServiceRuntime, deliver: Deliver
) -> None:
    """A planned workout and a duplicate change no usage: no notification. A completed
    workout does: one, naming the client."""
    completed = logged()
    async with await connected(runtime) as listener:
        await listener.execute(f"LISTEN {USAGE_CHANGED}")
        notifications = listener.notifies(timeout=1.0)
        await deliver(logged(status="planned", user_id=OTHER_CLIENT))
        await deliver(completed, event_id="once")
        await deliver(completed, event_id="once")
        received = [(n.channel, n.payload) async for n in notifications]

    assert received == [(USAGE_CHANGED, str(CLIENT))]


async def test_a_change_applied_by_the_consumer_wakes_the_clients_stream(
    app: FastAPI, runtime: ServiceRuntime, deliver: Deliver
) -> None:
    streams: UsageStreams = app.state.usage_streams
    streams.reread_seconds = NEVER
    async with watching(streams, CLIENT) as stream:
        first = await stream.next_event()
        await eventually(lambda: _listening_once(runtime))

        await deliver(logged())
        changed = await stream.next_event()

    assert first.raw_data is not None
    assert '"total":0' in first.raw_data
    assert changed.raw_data is not None
    assert '"total":1' in changed.raw_data
    assert changed.id == event_id_of(changed.raw_data)


async def _listening_once(runtime: ServiceRuntime) -> bool:
    return len(await listening(runtime)) == 1


async def _nobody_listening(runtime: ServiceRuntime) -> bool:
    return not await listening(runtime)


async def test_a_notification_sends_the_usage_only_when_it_differs_from_the_last_sent(
    runtime: ServiceRuntime, usages: Usages, streams: UsageStreams
) -> None:
    usages.current[CLIENT] = "first"
    async with watching(streams, CLIENT) as stream:
        assert (await stream.next_event()).raw_data == "first"
        await eventually(lambda: usages.reads == 2)  # listening: read again

        await notify(runtime, str(CLIENT))
        await eventually(lambda: usages.reads == 3)
        usages.current[CLIENT] = "second"
        await notify(runtime, str(CLIENT))
        second = await stream.next_event()

    assert second.raw_data == "second"
    assert second.id == event_id_of("second")
    assert stream.received.empty(), "the unchanged usage was not sent again"


async def test_a_notification_wakes_only_the_streams_of_the_client_it_names(
    runtime: ServiceRuntime, usages: Usages, streams: UsageStreams
) -> None:
    async with watching(streams, CLIENT) as stream:
        await stream.next_event()
        # Once listening, the stream reads again (what changed before is not missed).
        await eventually(lambda: usages.reads == 2)
        usages.current[CLIENT] = "changed"

        await notify(runtime, str(OTHER_CLIENT))
        await notify(runtime, "not a user id")
        await notify(runtime, str(CLIENT))

        assert (await stream.next_event()).raw_data == "changed"
    assert usages.reads == 3


async def test_a_stream_reads_again_on_its_own_when_no_notification_comes(
    runtime: ServiceRuntime,
) -> None:
    usages = Usages()
    streams = streams_on(runtime, usages, reread=0.05)
    async with watching(streams, CLIENT) as stream:
        assert (await stream.next_event()).raw_data == "none"
        usages.current[CLIENT] = "changed unannounced"

        assert (await stream.next_event()).raw_data == "changed unannounced"


async def test_a_listener_that_lost_its_connection_catches_up_on_what_it_missed(
    runtime: ServiceRuntime, usages: Usages, streams: UsageStreams
) -> None:
    async with watching(streams, CLIENT) as stream:
        await stream.next_event()
        await eventually(lambda: _listening_once(runtime))
        (listener,) = await listening(runtime)
        usages.current[CLIENT] = "changed while nobody listened"
        async with await connected(runtime) as connection:
            await connection.execute("select pg_terminate_backend(%s)", (listener,))

        assert (await stream.next_event()).raw_data == "changed while nobody listened"


async def test_the_last_stream_to_go_closes_the_listener(
    runtime: ServiceRuntime, streams: UsageStreams
) -> None:
    async with watching(streams, CLIENT) as one:
        async with watching(streams, OTHER_CLIENT) as other:
            await one.next_event()
            await other.next_event()
            await eventually(lambda: _listening_once(runtime))
        assert len(await listening(runtime)) == 1

    await eventually(lambda: _nobody_listening(runtime))


async def test_a_reconnect_naming_the_usage_as_it_is_gets_a_comment_not_a_repeat(
    usages: Usages, streams: UsageStreams
) -> None:
    usages.current[CLIENT] = "as it is"
    async with watching(streams, CLIENT, last_event_id=event_id_of("as it is")) as stream:
        first = await stream.next_event()

    assert first.raw_data is None
    assert first.comment
    assert first.retry is not None


async def test_closing_ends_every_stream(streams: UsageStreams) -> None:
    async with watching(streams, CLIENT) as one, watching(streams, OTHER_CLIENT) as other:
        await one.next_event()
        await other.next_event()

        streams.close()

        assert await one.end() == []
        assert await other.end() == []
