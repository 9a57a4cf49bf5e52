"""How the steps tell the operator what they are doing, without knowing about the terminal."""

from __future__ import annotations

from collections.abc import Callable

#: Receives one line of progress ("Kafka: starting (pid 123)").
Say = Callable[[str], None]


def silent(_: str) -> None:
    """A `Say` for callers that want no progress lines (tests)."""
