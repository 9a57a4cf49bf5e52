"""Structured logs: one JSON object per line, with the ids of the work being done."""

from __future__ import annotations

import io
import json
import logging
import warnings
from collections.abc import Iterator
from typing import Any

import pytest

from servicekit import tracing
from servicekit.logs import JsonFormatter, configure_logging

HEADER = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    """A logger writing JSON to a buffer, whatever the root logger does."""
    output = io.StringIO()
    handler = logging.StreamHandler(output)
    handler.setFormatter(JsonFormatter(service="credits"))
    logger = logging.getLogger("tests.logs")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    yield output
    logger.removeHandler(handler)


def lines(output: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in output.getvalue().splitlines()]


def test_each_record_is_one_json_object_naming_time_level_logger_and_service(
    stream: io.StringIO,
) -> None:
    logging.getLogger("tests.logs").info("granted %d sessions", 10)
    [line] = lines(stream)
    assert line.pop("time").endswith("+00:00")
    assert line == {
        "level": "INFO",
        "logger": "tests.logs",
        "message": "granted 10 sessions",
        "service": "credits",
    }


def test_inside_a_unit_of_work_lines_carry_its_event_correlation_and_trace(
    stream: io.StringIO,
) -> None:
    context = tracing.from_record([("traceparent", HEADER.encode())])
    with tracing.bound(context.for_event("event-1", "SessionBooked")):
        logging.getLogger("tests.logs").warning("applied")
    logging.getLogger("tests.logs").warning("outside")
    inside, outside = lines(stream)
    assert inside["event_id"] == "event-1"
    assert inside["event_type"] == "SessionBooked"
    assert inside["correlation_id"] == "event-1"
    assert inside["trace_id"] == "0af7651916cd43dd8448eb211c80319c"
    assert inside["span_id"] == context.trace.span_id
    assert not {"event_id", "trace_id", "correlation_id"} & set(outside)


def test_a_multi_line_message_and_its_exception_stay_on_one_line(stream: io.StringIO) -> None:
    try:
        raise ValueError("bad\nthing")
    except ValueError:
        logging.getLogger("tests.logs").exception("first\nsecond")
    [line] = lines(stream)
    assert line["message"] == "first\nsecond"
    assert line["level"] == "ERROR"
    assert "ValueError: bad\nthing" in line["exception"]


@pytest.fixture
def restored_logging() -> Iterator[None]:
    root = logging.getLogger()
    faststream = logging.getLogger("faststream")
    saved = (
        root.handlers[:],
        root.level,
        faststream.handlers[:],
        faststream.level,
        faststream.propagate,
    )
    yield
    logging.captureWarnings(False)
    root.handlers[:], root.level = saved[0], saved[1]
    faststream.handlers[:], faststream.level, faststream.propagate = saved[2:]


@pytest.mark.usefixtures("restored_logging")
def test_a_served_process_logs_everything_as_json_faststream_and_warnings_included() -> None:
    output = io.StringIO()
    configure_logging(service="booking", level="INFO", stream=output)
    logging.getLogger("faststream").info("FastStream app started")
    logging.getLogger("faststream.broker").debug("below the level: dropped")
    logging.getLogger("uvicorn.access").info('"GET /metrics HTTP/1.1" 200')
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.warn("careful", UserWarning, stacklevel=1)
    written = lines(output)
    assert [(line["logger"], line["service"]) for line in written] == [
        ("faststream", "booking"),
        ("uvicorn.access", "booking"),
        ("py.warnings", "booking"),
    ]
    assert "careful" in written[2]["message"]
