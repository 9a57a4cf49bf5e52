"""Structured logs: one JSON object per line, so that a log shipper needs no parsing rules.

Every line has `time` (UTC, ISO 8601), `level`, `logger`, `message` and `service`; inside a
unit of work (a request, a consumed record: see `servicekit.tracing`) also `correlation_id`,
`trace_id` and `span_id`, and while an event is consumed `event_id` and `event_type`; an
exception adds `exception` (the formatted traceback).
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import TextIO

from servicekit import tracing

#: Loggers of libraries that install handlers of their own: their records go to the root
#: handler instead, so that every line of the process is JSON.
_SELF_HANDLED_LOGGERS = ("faststream",)


class JsonFormatter(logging.Formatter):
    def __init__(self, *, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "service": self.service,
        }
        context = tracing.current()
        if context is not None:
            entry.update(context.log_fields())
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        # ensure_ascii keeps a line one line whatever the message holds (newlines are escaped).
        return json.dumps(entry, default=str)


def configure_logging(*, service: str, level: str | int, stream: TextIO | None = None) -> None:
    """Send every log record of the process, as JSON, to `stream` (stderr by default)."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter(service=service))
    root = logging.getLogger()
    for old in root.handlers[:]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    # Python's warnings would otherwise be printed as plain text.
    logging.captureWarnings(True)
    for name in _SELF_HANDLED_LOGGERS:
        logger = logging.getLogger(name)
        for old in logger.handlers[:]:
            logger.removeHandler(old)
        logger.propagate = True
        logger.setLevel(logging.NOTSET)
