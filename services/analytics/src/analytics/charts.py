"""The spec's two usage charts as text, for terminals (`make demo`) and logs.

`render_usage_charts` takes the session-usage JSON exactly as
`GET /api/analytics/{userId}/session-usage` returns it, so a caller needs nothing but the
response body. Bars are proportional to the largest value of their chart.

Workout Type Distribution shows Solo Workouts and Trainer Sessions always (the spec's chart),
then Trainer-Assisted and Group Sessions when the client has any: a client of solo and
trainer-led workouts only gets the spec's chart exactly. Each kind has its colour (solo green
and trainer sessions orange, as the spec says; trainer-assisted blue, group magenta), drawn
only when asked (`colour`): the text is the same either way, label and all.

Session Credits shows Held (part of Remaining: booked, not yet delivered) and Expired
(beside Used and Remaining, which add up to Total with it) only when they are not zero: a
client without holds or expiries gets the spec's chart exactly, line for line.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

BLOCK = "█"
#: Characters of the longest bar in a chart.
BAR_WIDTH = 16
RULE = "─" * 25


@dataclass(frozen=True, slots=True)
class Kind:
    """A session type's bar: its key in the usage JSON, its label, its colour (an ANSI SGR
    code), and whether it shows when nothing of it was done."""

    key: str
    label: str
    colour: str
    always: bool = False


#: The bars of Workout Type Distribution, in order: the spec's two (green and orange, shown
#: even at zero, as the spec draws them), then the others when they have any workouts.
KINDS = (
    Kind("solo", "Solo Workouts:", "32", always=True),  # green
    Kind("trainerLed", "Trainer Sessions:", "38;5;208", always=True),  # orange
    Kind("trainerAssisted", "Trainer-Assisted:", "34"),  # blue
    Kind("group", "Group Sessions:", "35"),  # magenta
)
RESET = "\x1b[0m"


def render_usage_charts(usage: Mapping[str, Any], *, colour: bool = False) -> str:
    """Workout Type Distribution and Session Credits, as lines of text bars; with `colour`,
    each kind's bar in its colour (ANSI escapes, for terminals)."""
    kinds = [(kind, usage.get(kind.key) or {"count": 0, "percentage": 0.0}) for kind in KINDS]
    shown = [(kind, share) for kind, share in kinds if kind.always or share["count"]]
    lines = [
        "Workout Type Distribution",
        RULE,
        *_bars(
            [
                (kind.label, share["count"], f" ({share['percentage']:.1f}%)")
                for kind, share in shown
            ],
            colours=[kind.colour for kind, _ in shown] if colour else None,
        ),
        "",
        "Session Credits",
        RULE,
        *_bars(_credit_rows(usage["credits"])),
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


def _bars(
    rows: Sequence[tuple[str, int, str]], *, colours: Sequence[str] | None = None
) -> list[str]:
    label_width = max(len(label) for label, _, _ in rows) + 1
    number_width = max(len(str(value)) for _, value, _ in rows)
    largest = max(value for _, value, _ in rows)
    lines = []
    for index, (label, value, suffix) in enumerate(rows):
        bar = BLOCK * _bar_length(value, largest)
        padding = " " * (BAR_WIDTH - len(bar))
        if colours is not None and bar:
            bar = f"\x1b[{colours[index]}m{bar}{RESET}"
        lines.append(f"{label:<{label_width}}{bar}{padding} {value:>{number_width}}{suffix}")
    return lines


def _bar_length(value: int, largest: int) -> int:
    """Blocks for `value` when `largest` fills the width, rounded half up; anything above
    zero shows at least one block, and nothing (or a negative balance) shows none."""
    if value <= 0 or largest <= 0:
        return 0
    return max(1, (2 * value * BAR_WIDTH + largest) // (2 * largest))
