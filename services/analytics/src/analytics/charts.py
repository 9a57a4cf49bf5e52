"""The spec's two usage charts as text, for terminals (`make demo`) and logs.

`render_usage_charts` takes the session-usage JSON exactly as
`GET /api/analytics/{userId}/session-usage` returns it, so a caller needs nothing but the
response body. Bars are proportional to the largest value of their chart.
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
        *_bars(
            [
                ("Used:", credits["used"], ""),
                ("Remaining:", credits["remaining"], ""),
                ("Total:", credits["total"], ""),
            ]
        ),
    ]
    return "\n".join(lines)


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
