"""Trace and correlation context: which request or event the code running now works for.

Every unit of work (an HTTP request, a consumed record) runs inside a `Context`, kept in a
context variable so that logs and `Outbox.add` find it without being handed it:

- `trace`: W3C Trace Context (https://www.w3.org/TR/trace-context/). A request's incoming
  `traceparent` header, or a consumed record's, continues its trace with a new span of ours;
  without one (or with an invalid one) a new trace starts. The events this unit of work writes
  to the outbox carry `traceparent` with the same trace id and our span id as parent, so the
  consumers' spans become its children. `tracestate` is passed along untouched.
- `correlation_id`: a business-level thread through a chain of requests and events. It comes
  from the request's `X-Correlation-Id` header (a new one otherwise) and travels in the
  `correlation-id` record header; a record without one starts a chain named by its event id.
- `event_id`, `event_type`: the event being consumed, for the logs.

No tracing SDK: only the header format is implemented here (parse, validate, generate). An
OpenTelemetry collector can still join the traces, since the headers are the standard ones.
"""

from __future__ import annotations

import random
import re
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, replace

TRACEPARENT = "traceparent"
TRACESTATE = "tracestate"
#: The record header that carries the correlation id through Kafka.
CORRELATION_ID = "correlation-id"
#: The HTTP header a caller may set, and every response carries.
CORRELATION_ID_HTTP = "X-Correlation-Id"

_VERSION = "00"
_SAMPLED = 0x01
_HEX = re.compile(r"[0-9a-f]+")
#: Visible ASCII only, and short: the id ends up in record headers, logs and response headers.
_CORRELATION_ID = re.compile(r"[\x21-\x7e]{1,128}")
#: W3C: at most 32 list members of at most 256 characters; longer is not worth carrying.
_MAX_TRACESTATE = 512


@dataclass(frozen=True, slots=True)
class TraceParent:
    """One span of a trace: the `traceparent` header's fields (version 00)."""

    trace_id: str  # 32 lowercase hex digits, not all zero
    span_id: str  # 16 lowercase hex digits, not all zero: the header's parent-id
    flags: int = _SAMPLED

    @classmethod
    def parse(cls, header: str | None) -> TraceParent | None:
        """The header's trace, or None when it is absent or invalid (the W3C rules: then a
        new trace starts). Versions above 00 are read as 00, ignoring their extra fields."""
        if header is None:
            return None
        header = header.strip()
        version = header[:2]
        if len(version) != 2 or not _is_hex(version) or version == "ff":
            return None
        if version == _VERSION and len(header) != 55:
            return None
        if len(header) < 55 or (len(header) > 55 and header[55] != "-"):
            return None
        fields = header[:55].split("-")
        if len(fields) != 4:
            return None
        _, trace_id, span_id, flags = fields
        if len(trace_id) != 32 or len(span_id) != 16 or len(flags) != 2:
            return None
        if not (_is_hex(trace_id) and _is_hex(span_id) and _is_hex(flags)):
            return None
        if trace_id == "0" * 32 or span_id == "0" * 16:
            return None
        return cls(trace_id=trace_id, span_id=span_id, flags=int(flags, 16))

    @classmethod
    def start(cls) -> TraceParent:
        """The first span of a new trace (sampled: there is no sampler to say otherwise)."""
        return cls(trace_id=_random_hex(16), span_id=_random_hex(8), flags=_SAMPLED)

    def child(self) -> TraceParent:
        """A new span in the same trace."""
        return replace(self, span_id=_random_hex(8))

    @property
    def header(self) -> str:
        return f"{_VERSION}-{self.trace_id}-{self.span_id}-{self.flags:02x}"


@dataclass(frozen=True, slots=True)
class Context:
    """What the current unit of work is part of."""

    trace: TraceParent
    correlation_id: str | None = None
    tracestate: str | None = None
    event_id: str | None = None
    event_type: str | None = None

    def for_event(self, event_id: str, event_type: str) -> Context:
        """The context once the consumed record is known to be this event (made directly:
        `dataclasses.replace` costs more, once per record)."""
        return Context(
            trace=self.trace,
            correlation_id=self.correlation_id or event_id,
            tracestate=self.tracestate,
            event_id=event_id,
            event_type=event_type,
        )

    def headers(self) -> list[tuple[str, bytes]]:
        """The record headers that carry this context to the consumers of an event."""
        headers = [(TRACEPARENT, self.trace.header.encode())]
        if self.tracestate:
            headers.append((TRACESTATE, self.tracestate.encode()))
        if self.correlation_id:
            headers.append((CORRELATION_ID, self.correlation_id.encode()))
        return headers

    def log_fields(self) -> dict[str, str]:
        fields = {
            "event_id": self.event_id,
            "event_type": self.event_type,
            "correlation_id": self.correlation_id,
            "trace_id": self.trace.trace_id,
            "span_id": self.trace.span_id,
        }
        return {name: value for name, value in fields.items() if value is not None}


_current: ContextVar[Context | None] = ContextVar("servicekit_context", default=None)


def current() -> Context | None:
    return _current.get()


@contextmanager
def bound(context: Context) -> Iterator[Context]:
    """Run the block in `context` (restoring the previous one afterwards)."""
    token = _current.set(context)
    try:
        yield context
    finally:
        _current.reset(token)


def propagation_headers() -> list[tuple[str, bytes]]:
    """The headers an event written now must carry (none outside any unit of work)."""
    context = current()
    return context.headers() if context is not None else []


def from_request(headers: Mapping[str, str]) -> Context:
    """The context of an HTTP request, from its (case-insensitive) headers."""
    context = _continued(
        traceparent=headers.get(TRACEPARENT),
        tracestate=headers.get(TRACESTATE),
        correlation_id=headers.get(CORRELATION_ID_HTTP),
    )
    if context.correlation_id is None:
        context = replace(context, correlation_id=uuid.uuid4().hex)
    return context


def from_record(headers: Sequence[tuple[str, bytes]]) -> Context:
    """The context of a consumed record, from its Kafka headers (the first of each name).
    Without a correlation id, `Context.for_event` names the chain after the event."""
    found: dict[str, str] = {}
    for name, value in headers:
        # A header may have no value at all (null on the wire): then it says nothing.
        if name in (TRACEPARENT, TRACESTATE, CORRELATION_ID) and name not in found and value:
            found[name] = value.decode("ascii", errors="replace")
    return _continued(
        traceparent=found.get(TRACEPARENT),
        tracestate=found.get(TRACESTATE),
        correlation_id=found.get(CORRELATION_ID),
    )


def _continued(
    *, traceparent: str | None, tracestate: str | None, correlation_id: str | None
) -> Context:
    parent = TraceParent.parse(traceparent)
    if parent is None:
        # Without a valid parent the tracestate has nothing to belong to (W3C).
        trace, tracestate = TraceParent.start(), None
    else:
        trace = parent.child()
    if tracestate is not None and (len(tracestate) > _MAX_TRACESTATE or not tracestate.strip()):
        tracestate = None
    if correlation_id is not None and not _CORRELATION_ID.fullmatch(correlation_id):
        correlation_id = None  # unusable: the caller names a new one
    return Context(trace=trace, tracestate=tracestate, correlation_id=correlation_id)


def _is_hex(text: str) -> bool:
    return _HEX.fullmatch(text) is not None


def _random_hex(length_in_bytes: int) -> str:
    while True:
        # Trace ids must be unique, not secret: the operating system's randomness costs a
        # system call per id, and every consumed record starts a span.
        value = f"{random.getrandbits(8 * length_in_bytes):0{2 * length_in_bytes}x}"
        if value.strip("0"):  # all zeros is the one invalid value
            return value
