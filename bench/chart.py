"""The cost curve as a picture: a benchmark's rate per history size, drawn as SVG and saved
as PNG by the headless Chromium the page tests use (`make browser`), so that
docs/benchmarks.md shows it without a plotting library to install."""

from __future__ import annotations

import math
import tempfile
from collections.abc import Mapping, Sequence
from html import escape
from pathlib import Path

from selenium.webdriver.common.by import By

from testkit.browser import headless_chromium

WIDTH, HEIGHT = 760, 420
LEFT, RIGHT, TOP, BOTTOM = 80, 30, 50, 60
MEDIAN_BLUE, RUN_GREY, TARGET_RED = "#1f77b4", "#9e9e9e", "#d62728"
#: Steps of the rate axis, from 0 to the top line.
TICKS = 5


def tick_step(largest: float) -> float:
    """A round step (1, 2 or 5 times a power of ten) with `TICKS` steps covering `largest`."""
    magnitude = 10.0 ** math.floor(math.log10(largest / TICKS))
    return next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude * TICKS >= largest)


def events_label(events: int) -> str:
    if events >= 1_000_000:
        return f"{events / 1_000_000:g}M"
    if events >= 1_000:
        return f"{events / 1_000:g}k"
    return str(events)


def rate_target(medians: Mapping[int, float], share: float) -> tuple[float, str]:
    """The target of a rate curve: a share of the smallest history's median, and its label."""
    return medians[min(medians)] * share, f"target: {share:.0%} of the empty history's rate"


def cost_curve_svg(
    title: str,
    runs: Sequence[Mapping[int, float]],
    medians: Mapping[int, float],
    target: tuple[float, str],
    unit: str = "sessions/s",
) -> str:
    """A figure (`unit`) against events of history: each run's as a grey dot, the medians
    as a blue line, and the target (its value and label) as red dashes. History sizes are
    spaced evenly, not to scale: they span orders of magnitude."""
    sizes = sorted(medians)
    target_value, target_label = target
    figures = [*medians.values(), *(rate for run in runs for rate in run.values())]
    step = tick_step(max([*figures, target_value]))
    top = step * TICKS
    plot_width, plot_height = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x(index: int) -> float:
        return LEFT + plot_width * (index + 0.5) / len(sizes)

    def y(rate: float) -> float:
        return TOP + plot_height * (1 - rate / top)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        'font-family="sans-serif" font-size="13">',
        f'<rect width="{WIDTH}" height="{HEIGHT}" fill="white"/>',
        f'<text x="{WIDTH / 2}" y="28" text-anchor="middle" font-size="15">{escape(title)}</text>',
    ]
    for tick in range(TICKS + 1):
        rate = step * tick
        parts.append(
            f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y(rate):.1f}" y2="{y(rate):.1f}" '
            'stroke="#e0e0e0"/>'
            f'<text x="{LEFT - 8}" y="{y(rate) + 4:.1f}" text-anchor="end">{rate:,.0f}</text>'
        )
    for index, events in enumerate(sizes):
        parts.append(
            f'<text x="{x(index):.1f}" y="{HEIGHT - BOTTOM + 20}" text-anchor="middle">'
            f"{events_label(events)}</text>"
        )
    parts.append(
        f'<text x="{LEFT + plot_width / 2}" y="{HEIGHT - 14}" text-anchor="middle">'
        "events of history</text>"
        f'<text transform="translate(18 {TOP + plot_height / 2}) rotate(-90)" '
        f'text-anchor="middle">{escape(unit)}</text>'
    )
    parts.append(
        f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y(target_value):.1f}" '
        f'y2="{y(target_value):.1f}" stroke="{TARGET_RED}" stroke-dasharray="6 4"/>'
        f'<text x="{LEFT + 6}" y="{y(target_value) + 16:.1f}" '
        f'fill="{TARGET_RED}">{escape(target_label)}</text>'
    )
    for run in runs:
        for index, events in enumerate(sizes):
            if events in run:
                parts.append(
                    f'<circle cx="{x(index):.1f}" cy="{y(run[events]):.1f}" r="3" '
                    f'fill="{RUN_GREY}"/>'
                )
    points = " ".join(f"{x(i):.1f},{y(medians[e]):.1f}" for i, e in enumerate(sizes))
    parts.append(
        f'<polyline points="{points}" fill="none" stroke="{MEDIAN_BLUE}" stroke-width="2.5"/>'
    )
    for index, events in enumerate(sizes):
        rate = medians[events]
        parts.append(
            f'<circle cx="{x(index):.1f}" cy="{y(rate):.1f}" r="5" fill="{MEDIAN_BLUE}"/>'
            f'<text x="{x(index) + 9:.1f}" y="{y(rate) - 9:.1f}">{rate:,.0f}</text>'
        )
    parts.append("</svg>")
    return "\n".join(parts)


def save_png(svg: str, path: Path) -> None:
    """Draw `svg` in the browser and save exactly its box as a PNG at `path`."""
    with tempfile.TemporaryDirectory() as scratch:
        page = Path(scratch) / "chart.html"
        page.write_text(f'<html><body style="margin:0">{svg}</body></html>')
        with headless_chromium() as browser:
            browser.get(page.as_uri())
            path.parent.mkdir(parents=True, exist_ok=True)
            browser.find_element(By.TAG_NAME, "svg").screenshot(str(path))
