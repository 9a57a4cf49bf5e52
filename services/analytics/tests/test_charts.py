"""The text rendering of the spec's two charts, from the session-usage JSON."""

from __future__ import annotations

from typing import Any

from analytics.charts import BAR_WIDTH, BLOCK, render_usage_charts


def usage(
    solo: int, trainer_led: int, shares: tuple[float, float], credits: tuple[int, int]
) -> dict[str, Any]:
    total, used = credits
    return {
        "total": solo + trainer_led,
        "solo": {"count": solo, "percentage": shares[0]},
        "trainerLed": {"count": trainer_led, "percentage": shares[1]},
        "credits": {"total": total, "used": used, "remaining": total - used},
    }


def bar_of(chart: str, label: str) -> int:
    [line] = [line for line in chart.splitlines() if line.startswith(label)]
    return line.count(BLOCK)


def test_example_1_renders_as_the_spec_draws_it() -> None:
    chart = render_usage_charts(usage(4, 2, (66.7, 33.3), (10, 2)))
    assert chart == "\n".join(
        [
            "Workout Type Distribution",
            "─────────────────────────",
            "Solo Workouts:    ████████████████ 4 (66.7%)",
            "Trainer Sessions: ████████         2 (33.3%)",
            "",
            "Session Credits",
            "─────────────────────────",
            "Used:      ███               2",
            "Remaining: █████████████     8",
            "Total:     ████████████████ 10",
        ]
    )


def test_example_2_shows_counts_percentages_and_credits() -> None:
    chart = render_usage_charts(usage(30, 15, (66.7, 33.3), (20, 15)))
    lines = chart.splitlines()
    assert lines[2].startswith("Solo Workouts:")
    assert lines[2].endswith(" 30 (66.7%)")
    assert lines[3].startswith("Trainer Sessions:")
    assert lines[3].endswith(" 15 (33.3%)")
    assert lines[7].startswith("Used:")
    assert lines[7].endswith(" 15")
    assert lines[8].startswith("Remaining:")
    assert lines[8].endswith("  5")
    assert lines[9].startswith("Total:")
    assert lines[9].endswith(" 20")


def test_bars_are_proportional_to_the_largest_value_of_their_chart() -> None:
    chart = render_usage_charts(usage(30, 15, (66.7, 33.3), (20, 15)))
    assert (bar_of(chart, "Solo"), bar_of(chart, "Trainer")) == (BAR_WIDTH, BAR_WIDTH // 2)
    assert (bar_of(chart, "Total"), bar_of(chart, "Used"), bar_of(chart, "Remaining")) == (
        BAR_WIDTH,
        12,
        4,
    )


def test_numbers_line_up_after_the_bars() -> None:
    chart = render_usage_charts(usage(30, 15, (66.7, 33.3), (20, 15)))
    lines = chart.splitlines()
    assert len({line.index("(") for line in lines[2:4]}) == 1
    assert len({len(line) for line in lines[7:10]}) == 1


def test_a_small_share_still_shows_a_block() -> None:
    chart = render_usage_charts(usage(99, 1, (99.0, 1.0), (0, 0)))
    assert bar_of(chart, "Trainer") == 1


def test_a_client_with_nothing_gets_empty_bars_and_zeros() -> None:
    chart = render_usage_charts(usage(0, 0, (0.0, 0.0), (0, 0)))
    assert BLOCK not in chart
    lines = chart.splitlines()
    assert lines[2].endswith(" 0 (0.0%)")
    assert lines[3].endswith(" 0 (0.0%)")
    assert [line.split()[-1] for line in lines[7:10]] == ["0", "0", "0"]


def test_a_balance_below_zero_shows_its_number_and_no_bar() -> None:
    chart = render_usage_charts(usage(0, 1, (0.0, 100.0), (0, 1)))
    assert bar_of(chart, "Remaining") == 0
    assert chart.splitlines()[8].endswith(" -1")
    assert "1 (100.0%)" in chart
