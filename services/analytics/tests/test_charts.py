"""The text rendering of the spec's two charts, from the session-usage JSON: held and expired
credits beside used and remaining when there are any, the spec's chart exactly when not."""

from __future__ import annotations

from typing import Any

import pytest

from analytics.charts import BAR_WIDTH, BLOCK, render_usage_charts

from .stories import full_balance


def usage(
    solo: int,
    trainer_led: int,
    shares: tuple[float, float],
    credits: tuple[int, int],
    *,
    held: int = 0,
    expired: int = 0,
) -> dict[str, Any]:
    total, used = credits
    return {
        "total": solo + trainer_led,
        "solo": {"count": solo, "percentage": shares[0]},
        "trainerLed": {"count": trainer_led, "percentage": shares[1]},
        "credits": full_balance(total, used, held=held, expired=expired),
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


def test_held_and_expired_credits_show_beside_used_and_remaining() -> None:
    chart = render_usage_charts(usage(2, 1, (66.7, 33.3), (10, 2), held=1, expired=3))
    assert chart.split("\n")[5:] == [
        "Session Credits",
        "─────────────────────────",
        "Used:      ███               2",
        "Remaining: ████████          5",
        "Held:      ██                1",
        "Expired:   █████             3",
        "Total:     ████████████████ 10",
    ]


@pytest.mark.parametrize(("held", "expired", "shown"), [(1, 0, "Held"), (0, 2, "Expired")])
def test_only_the_one_of_held_and_expired_that_is_not_zero_shows(
    held: int, expired: int, shown: str
) -> None:
    chart = render_usage_charts(usage(0, 0, (0.0, 0.0), (10, 1), held=held, expired=expired))
    labels = [line.split(":")[0] for line in chart.splitlines()[7:]]
    assert labels == ["Used", "Remaining", shown, "Total"]


def test_a_usage_from_before_holds_and_expiry_renders_as_the_spec_draws_it() -> None:
    """An answer whose balance carries neither (an older analytics): both read as 0."""
    older = usage(4, 2, (66.7, 33.3), (10, 2))
    older["credits"] = {"total": 10, "used": 2, "remaining": 8}
    assert render_usage_charts(older) == render_usage_charts(usage(4, 2, (66.7, 33.3), (10, 2)))
    assert "Held" not in render_usage_charts(older)


def every_kind(solo: int, trainer_led: int, assisted: int, group: int) -> dict[str, Any]:
    total = solo + trainer_led + assisted + group

    def share(count: int) -> dict[str, Any]:
        return {"count": count, "percentage": round(count * 100 / total, 1) if total else 0.0}

    return {
        "total": total,
        "solo": share(solo),
        "trainerLed": share(trainer_led),
        "trainerAssisted": share(assisted),
        "group": share(group),
        "credits": full_balance(10, 2),
    }


def test_the_other_kinds_show_only_when_they_have_workouts() -> None:
    """Solo and trainer sessions always (the spec's chart), the others when not zero."""
    assert render_usage_charts(every_kind(4, 2, 0, 0)) == render_usage_charts(
        usage(4, 2, (66.7, 33.3), (10, 2))
    )
    labels = [
        line.split(":")[0] for line in render_usage_charts(every_kind(0, 0, 3, 1)).splitlines()[2:6]
    ]
    assert labels == ["Solo Workouts", "Trainer Sessions", "Trainer-Assisted", "Group Sessions"]
    only_group = render_usage_charts(every_kind(1, 0, 0, 1)).splitlines()
    assert [line.split(":")[0] for line in only_group[2:5]] == [
        "Solo Workouts",
        "Trainer Sessions",
        "Group Sessions",
    ]


def test_every_kind_has_its_bar_count_and_share() -> None:
    chart = render_usage_charts(every_kind(2, 1, 1, 4))
    assert chart.split("\n")[:6] == [
        "Workout Type Distribution",
        "─────────────────────────",
        "Solo Workouts:    ████████         2 (25.0%)",
        "Trainer Sessions: ████             1 (12.5%)",
        "Trainer-Assisted: ████             1 (12.5%)",
        "Group Sessions:   ████████████████ 4 (50.0%)",
    ]


def test_colours_are_the_specs_for_solo_and_trainer_sessions_and_distinct_for_the_others() -> None:
    plain = render_usage_charts(every_kind(2, 1, 1, 4))
    coloured = render_usage_charts(every_kind(2, 1, 1, 4), colour=True)
    assert "\x1b[" not in plain
    lines = coloured.splitlines()
    green, orange = "\x1b[32m", "\x1b[38;5;208m"
    assert lines[2].startswith(f"Solo Workouts:    {green}{BLOCK * 8}\x1b[0m")
    assert lines[3].startswith(f"Trainer Sessions: {orange}{BLOCK * 4}\x1b[0m")
    colours = [line.split("\x1b[")[1].split("m")[0] for line in lines[2:6]]
    assert len(set(colours)) == 4
    # The text is the same, escapes aside; the credits are not coloured.
    assert (
        coloured.replace("\x1b[0m", "")
        .replace(green, "")
        .replace(orange, "")
        .replace("\x1b[34m", "")
        .replace("\x1b[35m", "")
        == plain
    )
    assert lines[7:] == plain.splitlines()[7:]


def test_an_empty_kind_gets_no_colour_codes() -> None:
    chart = render_usage_charts(every_kind(0, 0, 0, 0), colour=True)
    assert "\x1b[" not in chart
