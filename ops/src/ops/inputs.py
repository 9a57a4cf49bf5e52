"""What each service consumes, and in which consumer group: read from the service itself.

Each service declares its input topics as `<service>.main.INPUT_TOPICS`; replays, rebuilds,
lag and status all use that one list, so a service that starts consuming a new topic is
replayed and rebuilt from it without touching this tool.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence

from contracts.services import SERVICES
from contracts.topics import Topic
from ops.local.errors import PlatformError

SERVICE_NAMES: tuple[str, ...] = tuple(service.name for service in SERVICES)


def input_topics(service: str) -> tuple[Topic, ...]:
    """The contract topics `service` consumes (without any prefix)."""
    if service not in SERVICE_NAMES:
        names = ", ".join(SERVICE_NAMES)
        raise PlatformError(f"unknown service {service!r}: expected one of {names}")
    try:
        module = importlib.import_module(f"{service}.main")
    except ImportError as error:
        raise PlatformError(
            f"cannot load the {service} service ({error}): run `make bootstrap`"
        ) from None
    topics: Sequence[Topic] = module.INPUT_TOPICS
    return tuple(topics)


def input_topic_names(service: str, prefix: str = "") -> list[str]:
    """The names of `service`'s input topics on the broker, behind `prefix`."""
    return [prefix + topic.name for topic in input_topics(service)]
