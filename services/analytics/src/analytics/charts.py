"""The spec's two usage charts as text, for terminals (`make demo`) and logs.

`render_usage_charts` takes the session-usage JSON exactly as
`GET /api/analytics/{userId}/session-usage` returns it, so a caller needs nothing but the
response body. Bars are proportional to the largest value of their chart.

Session Credits shows Held (part of Remaining: booked, not yet delivered) and Expired
(beside Used and Remaining, which add up to Total with it) only when they are not zero: a
client without holds or expiries gets the spec's chart exactly, line for line.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

BLOCK = "█"
#: Characters of the longest bar in a chart.
BAR_WIDTH = 16
RULE = "─" * 25


def render_usage_charts(usage: Mapping[str, Any]) -> str:
    """Workout Type Distribution and Session Credits, as lines of text bars."""
    solo, trainer_led, credits = usage["solo"], usage["trainerLed"], usage["credits"]
    lines = [
        "Workout Type Distribution",
        RULE,
        *_bars(
            [
                ("Solo Workouts:", solo["count"], f" ({solo['percentage']:.1f}%)"),
                ("Trainer Sessions:", trainer_led["count"], f" ({trainer_led['percentage']:.1f}%)"),
            ]
        ),
        "",
        "Session Credits",
        RULE,
        *_bars(_credit_rows(credits)),
    ]
    return "\n".join(lines)


def _credit_rows(credits: Mapping[str, Any]) -> list[tuple[str, int, str]]:
    """Used, Remaining and Total always; Held and Expired when not zero (see above). A
    balance from before holds and expiry carries neither: both read as 0, as in the contract."""
    held, expired = credits.get("held", 0), credits.get("expired", 0)
    return [
        ("Used:", credits["used"], ""),
        ("Remaining:", credits["remaining"], ""),
        *([("Held:", held, "")] if held else []),
        *([("Expired:", expired, "")] if expired else []),
        ("Total:", credits["total"], ""),
    ]


def _bars(rows: Sequence[tuple[str, int, str]]) -> list[str]:
    label_width = max(len(label) for label, _, _ in rows) + 1
    number_width = max(len(str(value)) for _, value, _ in rows)
    largest = max(value for _, value, _ in rows)
    return [
        f"{label:<{label_width}}{BLOCK * _bar_length(value, largest):<{BAR_WIDTH}}"
        f" {value:>{number_width}}{suffix}"
        for label, value, suffix in rows
    ]


def _bar_length(value: int, largest: int) -> int:
    """Blocks for `value` when `largest` fills the width, rounded half up; anything above
    zero shows at least one block, and nothing (or a negative balance) shows none."""
    if value <= 0 or largest <= 0:
        return 0
    return max(1, (2 * value * BAR_WIDTH + largest) // (2 * largest))
