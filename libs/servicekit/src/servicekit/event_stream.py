"""Reading a server-sent event stream as a client does (the tests and the benchmarks read the
usage stream with it): the lines of a `text/event-stream` body turned into its messages, as
https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation
says: `field: value` lines, `:` comments, a blank line ending each message."""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass, field


@dataclass
class StreamMessage:
    """One message: an event (with `data`) or only comments and a `retry` hint."""

    event: str | None = None
    id: str | None = None
    data: str | None = None
    retry: int | None = None
    comments: list[str] = field(default_factory=list)

    @property
    def is_event(self) -> bool:
        return self.data is not None


async def stream_messages(lines: AsyncIterable[str]) -> AsyncIterator[StreamMessage]:
    """The messages of a stream, given its lines (httpx's `Response.aiter_lines()`)."""
    message = StreamMessage()
    started = False
    async for line in lines:
        if not line:
            if started:
                yield message
            message, started = StreamMessage(), False
            continue
        started = True
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if not name:
            message.comments.append(value)
        elif name == "data":
            message.data = value if message.data is None else f"{message.data}\n{value}"
        elif name == "event":
            message.event = value
        elif name == "id":
            message.id = value
        elif name == "retry" and value.isdigit():
            message.retry = int(value)
