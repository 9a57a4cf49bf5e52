"""Late cancels and no-shows (`credits.rules`): a session is judged by the policy stamped on
its booking; a forfeited credit is a charge with its cause, once, that staff may waive
once."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from contracts import events
from contracts.events import CancellationPolicy, PackageType
from credits.rules import (
    EXPIRY_GRACE,
    EntryKind,
    Ledger,
    NoForfeit,
    Place,
    expiry_id,
    forfeit_id,
    waiver_id,
)
from testkit.events import CLIENT, booked, moved, purchase

from .ledgers import MONDAY, POLICY, day, figures, package, row, rows
from .test_rules import OTHER, announced, apply

SESSION_DATE = day(3)


def booked_under(policy: CancellationPolicy | None) -> list[events.EventPayload]:
    """A package of 5 sessions, and session 1 booked for SESSION_DATE under `policy`."""
    return [purchase(5, at=MONDAY), booked(1, session_date=SESSION_DATE, policy=policy)]


def cancelled(before: timedelta) -> events.SessionCancelled:
    return moved(events.SessionCancelled, 1, at=SESSION_DATE - before)


def no_show(at: datetime = SESSION_DATE + timedelta(minutes=15)) -> events.SessionNoShow:
    return moved(events.SessionNoShow, 1, at=at)


def forfeited(policy: CancellationPolicy | None, ending: events.EventPayload) -> Ledger:
    return apply(Ledger(), *booked_under(policy), ending)


def test_a_cancellation_within_the_window_forfeits_the_credit() -> None:
    ledger = forfeited(POLICY, cancelled(timedelta(hours=24)))
    entry = row(ledger, forfeit_id(Place(1)))
    assert (entry["kind"], entry["amount"], entry["cause"], entry["package_id"]) == (
        EntryKind.FORFEIT,
        -1,
        events.LATE_CANCEL,
        package(ledger).id,
    )
    assert entry["effective_at"] == SESSION_DATE
    [forfeit] = announced(ledger, events.SessionCreditForfeited)
    assert (forfeit.cause, forfeit.policy, forfeit.session_date, forfeit.package_id) == (
        events.LATE_CANCEL,
        POLICY,
        SESSION_DATE,
        package(ledger).id,
    )
    assert figures(ledger) == (5, 1, 0, 0, 4, 4)
    assert forfeit.balance == ledger.balance_of(CLIENT)


def test_a_cancellation_before_the_window_forfeits_nothing() -> None:
    ledger = forfeited(POLICY, cancelled(timedelta(hours=24, seconds=1)))
    assert rows(ledger, EntryKind.FORFEIT) == []
    assert figures(ledger) == (5, 0, 0, 0, 5, 5)


def test_a_cancellation_after_the_sessions_time_forfeits_too() -> None:
    ledger = forfeited(POLICY, cancelled(-timedelta(minutes=30)))
    assert row(ledger, forfeit_id(Place(1)))["cause"] == events.LATE_CANCEL


def test_a_no_show_forfeits_under_a_policy_that_says_so() -> None:
    ledger = forfeited(POLICY, no_show())
    assert row(ledger, forfeit_id(Place(1)))["cause"] == events.NO_SHOW
    [forfeit] = announced(ledger, events.SessionCreditForfeited)
    assert forfeit.cause == events.NO_SHOW
    assert figures(ledger) == (5, 1, 0, 0, 4, 4)


def test_a_no_show_forfeits_nothing_under_a_policy_of_late_cancels_only() -> None:
    ledger = forfeited(CancellationPolicy(late_cancel_hours=24), no_show())
    assert rows(ledger, EntryKind.FORFEIT) == []


def test_a_late_cancel_forfeits_nothing_under_a_policy_of_no_shows_only() -> None:
    ledger = forfeited(CancellationPolicy(no_show_forfeits=True), cancelled(timedelta(hours=1)))
    assert rows(ledger, EntryKind.FORFEIT) == []


@pytest.mark.parametrize(
    "ending", [cancelled(timedelta(hours=1)), no_show()], ids=["late-cancel", "no-show"]
)
@pytest.mark.parametrize("policy", [None, CancellationPolicy()], ids=["none", "forfeits-nothing"])
def test_without_a_policy_that_forfeits_nothing_is_forfeited(
    policy: CancellationPolicy | None, ending: events.EventPayload
) -> None:
    ledger = forfeited(policy, ending)
    assert rows(ledger, EntryKind.FORFEIT) == []
    assert figures(ledger) == (5, 0, 0, 0, 5, 5)


def test_a_session_is_judged_by_the_policy_on_its_first_booking_never_a_later_one() -> None:
    stamped = apply(
        Ledger(),
        *booked_under(POLICY),
        booked(1, session_date=SESSION_DATE),
        cancelled(timedelta(hours=1)),
    )
    assert forfeit_id(Place(1)) in stamped.entries
    unstamped = apply(
        Ledger(),
        *booked_under(None),
        booked(1, session_date=SESSION_DATE, policy=POLICY),
        cancelled(timedelta(hours=1)),
    )
    assert forfeit_id(Place(1)) not in unstamped.entries


def test_a_cancellation_read_before_its_booking_is_judged_when_the_booking_arrives() -> None:
    ledger = apply(Ledger(), purchase(5, at=MONDAY), cancelled(timedelta(hours=2)))
    assert rows(ledger, EntryKind.FORFEIT) == []
    apply(ledger, booked(1, session_date=SESSION_DATE, policy=POLICY))
    assert row(ledger, forfeit_id(Place(1)))["cause"] == events.LATE_CANCEL
    assert figures(ledger) == (5, 1, 0, 0, 4, 4)


def test_a_session_forfeits_once_whatever_ends_it_again() -> None:
    ledger = forfeited(POLICY, cancelled(timedelta(hours=2)))
    apply(ledger, no_show(), cancelled(timedelta(hours=1)), booked(1, session_date=SESSION_DATE))
    assert len(rows(ledger, EntryKind.FORFEIT)) == 1
    assert len(announced(ledger, events.SessionCreditForfeited)) == 1
    assert figures(ledger) == (5, 1, 0, 0, 4, 4)


def test_an_unlimited_package_pays_a_forfeit_with_nothing() -> None:
    ledger = apply(
        Ledger(),
        purchase(0, package_type=PackageType.UNLIMITED, at=MONDAY),
        booked(1, session_date=SESSION_DATE, policy=POLICY),
        no_show(),
    )
    entry = row(ledger, forfeit_id(Place(1)))
    assert (entry["amount"], entry["package_id"]) == (0, package(ledger).id)


def test_with_nothing_left_a_forfeit_is_charged_on_no_package() -> None:
    ledger = apply(Ledger(), booked(1, session_date=SESSION_DATE, policy=POLICY), no_show())
    entry = row(ledger, forfeit_id(Place(1)))
    assert (entry["amount"], entry["package_id"]) == (-1, None)
    assert figures(ledger) == (0, 1, 0, 0, -1, -1)


def test_staff_waive_a_forfeit_once() -> None:
    ledger = forfeited(POLICY, no_show())
    for _ in range(2):
        ledger.waive_forfeit(user_id=CLIENT, session_id=1, reason="the client was ill")
    entry = row(ledger, waiver_id(Place(1)))
    assert (entry["kind"], entry["amount"], entry["package_id"], entry["reason"]) == (
        EntryKind.WAIVER,
        1,
        package(ledger).id,
        "the client was ill",
    )
    [waived] = announced(ledger, events.SessionCreditRestored)
    assert (waived.restores, waived.reason, waived.package_id) == (
        "forfeit",
        "the client was ill",
        package(ledger).id,
    )
    assert figures(ledger) == (5, 0, 0, 0, 5, 5)
    assert package(ledger).left == 5


@pytest.mark.parametrize(
    ("user_id", "session_id"), [(CLIENT, 2), (OTHER, 1)], ids=["other-session", "other-client"]
)
def test_a_waiver_of_nothing_forfeited_is_refused(user_id: int, session_id: int) -> None:
    ledger = forfeited(POLICY, no_show())
    with pytest.raises(NoForfeit, match=f"client {user_id} forfeited no credit"):
        ledger.waive_forfeit(user_id=user_id, session_id=session_id, reason="asked")
    assert rows(ledger, EntryKind.WAIVER) == []


def test_a_waiver_for_a_session_cancelled_in_time_is_refused() -> None:
    ledger = forfeited(POLICY, cancelled(timedelta(days=3)))
    with pytest.raises(NoForfeit):
        ledger.waive_forfeit(user_id=CLIENT, session_id=1, reason="asked")


def test_a_credit_waived_back_to_an_expired_package_expires_at_once() -> None:
    ledger = apply(
        Ledger(),
        purchase(1, at=MONDAY, valid_until=day(5)),
        booked(1, session_date=SESSION_DATE, policy=POLICY),
        no_show(),
    )
    ledger.pass_time(day(5) + EXPIRY_GRACE)
    ledger.waive_forfeit(user_id=CLIENT, session_id=1, reason="late waiver")
    expiry = row(ledger, expiry_id(package(ledger).id, waiver_id(Place(1))))
    assert (expiry["amount"], expiry["effective_at"]) == (-1, day(5))
    assert figures(ledger) == (1, 0, 0, 1, 0, 0)


def test_a_forfeit_is_announced_with_its_hold_already_released() -> None:
    ledger = apply(
        Ledger(), purchase(3, at=MONDAY), booked(1, session_date=SESSION_DATE, policy=POLICY)
    )
    apply(ledger, cancelled(timedelta(hours=1)))
    [forfeit] = announced(ledger, events.SessionCreditForfeited)
    assert (forfeit.balance.used, forfeit.balance.held, forfeit.balance.available) == (1, 0, 2)
    assert announced(ledger, events.CreditsRunningLow) == []
