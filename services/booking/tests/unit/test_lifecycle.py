"""A session's lifecycle rules: where each status may go, rescheduling, bounds."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

import pytest

from booking.rules import (
    ChangeRefused,
    NotStorable,
    check_moment,
    refuse_reschedule,
    refuse_status_change,
)
from contracts.sessions import SessionStatus

S = SessionStatus
ALLOWED = {
    (S.SCHEDULED, S.IN_PROGRESS),
    (S.IN_PROGRESS, S.COMPLETED),
    (S.SCHEDULED, S.CANCELLED),
    (S.IN_PROGRESS, S.CANCELLED),
    (S.SCHEDULED, S.NO_SHOW),
}
REFUSED = sorted(
    (current, target)
    for current, target in itertools.product(S, S)
    if current != target and (current, target) not in ALLOWED
)


@pytest.mark.parametrize(("current", "target"), sorted(ALLOWED))
def test_the_contracts_transitions_are_allowed(current: S, target: S) -> None:
    refuse_status_change(7, current, target)


@pytest.mark.parametrize(("current", "target"), REFUSED)
def test_every_other_transition_is_refused_naming_session_and_statuses(
    current: S, target: S
) -> None:
    with pytest.raises(ChangeRefused) as refused:
        refuse_status_change(7, current, target)
    assert refused.value.reason.startswith("session 7 ")
    assert str(current) in refused.value.reason
    assert str(target) in refused.value.reason


def test_a_final_status_says_it_is_final() -> None:
    with pytest.raises(ChangeRefused, match="session 3 is completed, which is final"):
        refuse_status_change(3, S.COMPLETED, S.CANCELLED)


def test_a_refusal_names_where_the_session_may_go() -> None:
    with pytest.raises(ChangeRefused, match="it may become cancelled, completed"):
        refuse_status_change(3, S.IN_PROGRESS, S.NO_SHOW)


@pytest.mark.parametrize("status", [s for s in S if s is not S.SCHEDULED])
def test_only_a_scheduled_session_can_be_rescheduled(status: S) -> None:
    refuse_reschedule(1, S.SCHEDULED)
    with pytest.raises(ChangeRefused, match=f"session 1 is {status}"):
        refuse_reschedule(1, status)


def test_moments_no_session_can_hold_are_named() -> None:
    check_moment("at", datetime(2026, 1, 15, tzinfo=UTC))
    with pytest.raises(NotStorable, match="at 0001-01-01"):
        check_moment("at", datetime(1, 1, 1, tzinfo=UTC))
