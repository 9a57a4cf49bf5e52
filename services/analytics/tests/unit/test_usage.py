"""The rules of session usage, without I/O: shares rounded half up to one decimal."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from analytics.rules import CompletedWorkouts, SessionUsage, percentage
from contracts.events import Balance, SessionType


@pytest.mark.parametrize(
    ("part", "whole", "expected"),
    [
        (30, 45, "66.7"),
        (15, 45, "33.3"),
        (2, 3, "66.7"),
        (1, 3, "33.3"),
        (4, 6, "66.7"),
        (1, 6, "16.7"),
        (1, 8, "12.5"),
        (1, 16, "6.3"),  # 6.25: a half, rounded up (banker's rounding would give 6.2)
        (3, 16, "18.8"),  # 18.75
        (1, 40, "2.5"),
        (1, 2000, "0.1"),  # 0.05: half up
        (1, 2001, "0.0"),  # 0.0499...
        (1, 1, "100.0"),
        (0, 5, "0.0"),
        (0, 0, "0.0"),  # nothing to share: zero, never a division by zero
    ],
)
def test_percentages_round_half_up_to_one_decimal(part: int, whole: int, expected: str) -> None:
    assert percentage(part, whole) == Decimal(expected)
    assert str(percentage(part, whole)) == expected


def test_usage_counts_both_types_and_shares_them() -> None:
    usage = SessionUsage(
        workouts=CompletedWorkouts.from_counts({SessionType.SOLO: 30, SessionType.TRAINER_LED: 15}),
        credits=Balance(total=20, used=15, remaining=5),
    )
    assert usage.total == 45
    assert (usage.solo.count, usage.solo.percentage) == (30, 66.7)
    assert (usage.trainer_led.count, usage.trainer_led.percentage) == (15, 33.3)


def test_no_usage_is_all_zeros() -> None:
    usage = SessionUsage()
    assert (usage.total, usage.solo.percentage, usage.trainer_led.percentage) == (0, 0.0, 0.0)
    assert usage.credits == Balance(total=0, used=0, remaining=0)


def test_the_announcement_is_the_usage_of_one_client_at_a_time() -> None:
    usage = SessionUsage(workouts=CompletedWorkouts(solo=1, trainer_led=2))
    at = datetime(2026, 1, 15, 10, 45, tzinfo=UTC)
    assert usage.announcement(123, as_of=at).to_json_dict() == {
        "userId": 123,
        "total": 3,
        "solo": {"count": 1, "percentage": 33.3},
        "trainerLed": {"count": 2, "percentage": 66.7},
        "trainerAssisted": {"count": 0, "percentage": 0.0},
        "group": {"count": 0, "percentage": 0.0},
        "credits": {"total": 0, "used": 0, "remaining": 0, "held": 0, "expired": 0, "available": 0},
        "asOf": "2026-01-15T10:45:00Z",
    }


def test_the_announcement_carries_held_expired_and_available_credits() -> None:
    usage = SessionUsage(
        workouts=CompletedWorkouts(solo=2, trainer_led=1),
        credits=Balance(total=10, used=2, remaining=5, held=1, expired=3),
    )
    at = datetime(2026, 1, 15, 10, 45, tzinfo=UTC)
    assert usage.announcement(123, as_of=at).to_json_dict()["credits"] == {
        "total": 10,
        "used": 2,
        "remaining": 5,
        "held": 1,
        "expired": 3,
        "available": 4,
    }


def test_usages_with_the_same_figures_are_equal() -> None:
    """How the tracker tells a change from a no-op."""
    assert SessionUsage(CompletedWorkouts(1, 0), Balance(total=1, used=0, remaining=1)) == (
        SessionUsage(CompletedWorkouts(1, 0), Balance(total=1, used=0, remaining=1))
    )
    assert SessionUsage(CompletedWorkouts(1, 0)) != SessionUsage(CompletedWorkouts(0, 1))
    assert SessionUsage(credits=Balance(total=1, used=0, remaining=1, held=1)) != (
        SessionUsage(credits=Balance(total=1, used=0, remaining=1))
    )
