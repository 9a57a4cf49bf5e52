"""W3C trace context and correlation ids: read from requests and records, carried by events."""

from __future__ import annotations

import pytest

from servicekit import tracing
from servicekit.tracing import TraceParent

TRACE = "0af7651916cd43dd8448eb211c80319c"
SPAN = "b7ad6b7169203331"
HEADER = f"00-{TRACE}-{SPAN}-01"


def test_a_valid_traceparent_is_read_field_by_field() -> None:
    assert TraceParent.parse(HEADER) == TraceParent(trace_id=TRACE, span_id=SPAN, flags=1)
    assert TraceParent.parse(f"00-{TRACE}-{SPAN}-00") == TraceParent(TRACE, SPAN, flags=0)


@pytest.mark.parametrize(
    "header",
    [
        "",
        "garbage",
        HEADER.upper(),  # the format is lowercase hex
        f"00-{'0' * 32}-{SPAN}-01",  # all-zero trace id
        f"00-{TRACE}-{'0' * 16}-01",  # all-zero parent id
        f"ff-{TRACE}-{SPAN}-01",  # version ff is forbidden
        f"00-{TRACE}-{SPAN}-01-extra",  # version 00 has exactly four fields
        f"00-{TRACE[:-1]}g-{SPAN}-01",
        f"00-{TRACE}-{SPAN}-1",
        f"00_{TRACE}_{SPAN}_01",
        f"01-{TRACE}-{SPAN}-01x",  # a later version's extra fields follow a dash
    ],
)
def test_invalid_traceparents_are_refused(header: str) -> None:
    assert TraceParent.parse(header) is None


def test_a_later_version_is_read_as_version_00_ignoring_what_follows() -> None:
    parsed = TraceParent.parse(f"cc-{TRACE}-{SPAN}-01-what-the-future-holds")
    assert parsed == TraceParent(trace_id=TRACE, span_id=SPAN, flags=1)


def test_a_new_trace_has_valid_random_ids_and_is_sampled() -> None:
    first, second = TraceParent.start(), TraceParent.start()
    assert TraceParent.parse(first.header) == first
    assert first.flags == 1
    assert first.trace_id != second.trace_id
    assert first.span_id != second.span_id


def test_a_child_span_keeps_the_trace_and_its_flags_with_a_span_id_of_its_own() -> None:
    parent = TraceParent(trace_id=TRACE, span_id=SPAN, flags=0)
    child = parent.child()
    assert (child.trace_id, child.flags) == (TRACE, 0)
    assert child.span_id != SPAN
    assert child.header == f"00-{TRACE}-{child.span_id}-00"


def test_a_request_continues_the_callers_trace_in_a_span_of_its_own() -> None:
    context = tracing.from_request(
        {"traceparent": HEADER, "tracestate": "vendor=abc", "X-Correlation-Id": "order-42"}
    )
    assert context.trace.trace_id == TRACE
    assert context.trace.span_id != SPAN
    assert context.tracestate == "vendor=abc"
    assert context.correlation_id == "order-42"


def test_a_request_without_trace_or_correlation_id_starts_both() -> None:
    first, second = tracing.from_request({}), tracing.from_request({})
    assert first.correlation_id
    assert first.correlation_id != second.correlation_id
    assert first.trace.trace_id != second.trace.trace_id


def test_an_invalid_traceparent_starts_a_new_trace_and_drops_its_tracestate() -> None:
    context = tracing.from_request({"traceparent": HEADER.upper(), "tracestate": "vendor=abc"})
    assert context.trace.trace_id != TRACE
    assert context.tracestate is None


@pytest.mark.parametrize("unusable", ["two\nlines", "x" * 129, "with space"])
def test_an_unusable_correlation_id_is_replaced_by_a_new_one(unusable: str) -> None:
    context = tracing.from_request({"X-Correlation-Id": unusable})
    assert context.correlation_id
    assert context.correlation_id != unusable


def test_a_record_continues_the_trace_and_correlation_of_its_headers() -> None:
    context = tracing.from_record(
        [("content-type", b"x"), ("traceparent", HEADER.encode()), ("correlation-id", b"c-1")]
    ).for_event("event-1", "SessionBooked")
    assert context.trace.trace_id == TRACE
    assert context.trace.span_id != SPAN
    assert context.correlation_id == "c-1"
    assert (context.event_id, context.event_type) == ("event-1", "SessionBooked")


def test_a_record_without_a_correlation_id_is_correlated_by_its_event_id() -> None:
    context = tracing.from_record([]).for_event("event-1", "PackagePurchased")
    assert context.correlation_id == "event-1"


def test_events_written_in_a_unit_of_work_carry_its_span_and_correlation_id() -> None:
    context = tracing.from_request({"traceparent": HEADER, "X-Correlation-Id": "c-7"})
    assert tracing.propagation_headers() == []
    with tracing.bound(context):
        headers = dict(tracing.propagation_headers())
    assert tracing.current() is None
    assert headers == {
        "traceparent": f"00-{TRACE}-{context.trace.span_id}-01".encode(),
        "correlation-id": b"c-7",
    }


def test_log_fields_name_the_event_and_the_trace() -> None:
    context = tracing.from_record([("traceparent", HEADER.encode())]).for_event("e-1", "T")
    assert context.log_fields() == {
        "event_id": "e-1",
        "event_type": "T",
        "correlation_id": "e-1",
        "trace_id": TRACE,
        "span_id": context.trace.span_id,
    }
