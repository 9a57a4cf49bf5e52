"""The status table `ops status` prints, from figures already read (no I/O)."""

from __future__ import annotations

import re

from ops.databases import Parked
from ops.inspection import ServiceHealth, health_lines


def cells(line: str) -> list[str]:
    """A table line's cells (2 or more spaces apart)."""
    return re.split(r"\s{2,}", line.strip())


def test_parked_deductions_are_shown_for_credits_with_the_oldest_ones_age() -> None:
    header, booking, credits = health_lines(
        [
            ServiceHealth("booking", "ready", 0, 0),
            ServiceHealth("credits", "ready", 4, 1, Parked(2, 3 * 3600 + 5 * 60 + 9)),
        ],
        {"booking": "running (pid 7)", "credits": "stopped"},
    )
    assert cells(header) == ["SERVICE", "PROCESS", "READY", "LAG", "OUTBOX", "PARKED"]
    assert cells(booking) == ["booking", "running (pid 7)", "ready", "0", "0", "-"]
    assert cells(credits) == ["credits", "stopped", "ready", "4", "1", "2 (oldest 3 h 05 min)"]


def test_no_parked_deduction_is_a_zero_and_a_silent_database_says_so() -> None:
    _, idle, unknown = health_lines(
        [
            ServiceHealth("credits", "ready", 0, 0, Parked(0, 0.0)),
            ServiceHealth("credits", "no answer", None, None, None),
        ]
    )
    assert cells(idle)[-1] == "0"
    assert cells(unknown)[-2:] == ["database does not answer", "database does not answer"]
