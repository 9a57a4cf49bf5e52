"""Expiry (`Ledger.pass_time`): what is left of a package when its validity ends expires once
its grace is over, as one entry that depends on the history alone; a package about to end is
announced once."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from contracts import events
from contracts.events import PackageType
from credits.rules import (
    EXPIRY_GRACE,
    EXPIRY_NOTICE,
    EntryKind,
    Ledger,
    Place,
    deduction_id,
    expiring_soon_id,
    expiry_id,
)
from testkit.events import booked, purchase, workout

from .ledgers import MONDAY, day, figures, package, row, rows
from .test_rules import announced, apply

END = day(14)


def ending(sessions: int = 3, **terms: Any) -> Ledger:
    """A client with a package of `sessions` bought on MONDAY that ends at END."""
    return apply(Ledger(), purchase(sessions, at=MONDAY, valid_until=END, **terms))


def test_nothing_expires_before_the_grace_is_over() -> None:
    ledger = ending()
    ledger.pass_time(END + EXPIRY_GRACE - timedelta(seconds=1))
    assert rows(ledger, EntryKind.EXPIRY) == []
    assert not package(ledger).closed
    assert figures(ledger)[3] == 0


def test_once_the_grace_is_over_what_is_left_expires_as_one_entry_dated_the_end() -> None:
    ledger = apply(ending(3), booked(1, session_date=day(1)), workout(1, date=day(1)))
    ledger.pass_time(END + EXPIRY_GRACE)
    [expiry] = rows(ledger, EntryKind.EXPIRY)
    assert (expiry["id"], expiry["amount"], expiry["effective_at"], expiry["package_id"]) == (
        expiry_id(package(ledger).id),
        -2,
        END,
        package(ledger).id,
    )
    [expired] = announced(ledger, events.CreditsExpired)
    assert (expired.amount, expired.valid_until, expired.caused_by) == (2, END, None)
    assert (expired.balance.expired, expired.balance.remaining) == (2, 0)
    assert (package(ledger).closed, package(ledger).expired, package(ledger).left) == (True, 2, 0)
    assert figures(ledger) == (3, 1, 0, 2, 0, 0)


def test_a_package_with_nothing_left_closes_without_an_expiry() -> None:
    ledger = apply(ending(1), booked(1, session_date=day(1)), workout(1, date=day(1)))
    ledger.pass_time(END + EXPIRY_GRACE)
    assert rows(ledger, EntryKind.EXPIRY) == []
    assert announced(ledger, events.CreditsExpired) == []
    assert package(ledger).closed


def test_an_unlimited_package_closes_without_an_expiry() -> None:
    ledger = apply(
        Ledger(), purchase(0, package_type=PackageType.UNLIMITED, at=MONDAY, valid_until=END)
    )
    ledger.pass_time(END + EXPIRY_GRACE)
    assert rows(ledger, EntryKind.EXPIRY) == []
    assert package(ledger).closed


def test_a_package_that_never_ends_never_expires() -> None:
    ledger = apply(Ledger(), purchase(3, at=MONDAY))
    ledger.pass_time(MONDAY + timedelta(days=3650))
    assert rows(ledger, EntryKind.EXPIRY) == []
    assert not package(ledger).closed


def test_a_session_before_the_end_reported_within_the_grace_still_draws_from_it() -> None:
    ledger = ending(3)
    ledger.pass_time(END + EXPIRY_GRACE - timedelta(minutes=1))
    apply(ledger, booked(1, session_date=END - timedelta(hours=1)), workout(1, date=END))
    assert row(ledger, deduction_id(Place(1)))["package_id"] == package(ledger).id
    ledger.pass_time(END + EXPIRY_GRACE)
    [expiry] = rows(ledger, EntryKind.EXPIRY)
    assert expiry["amount"] == -2


def test_once_expired_a_package_pays_nothing_more() -> None:
    ledger = ending(3)
    ledger.pass_time(END + EXPIRY_GRACE)
    apply(ledger, booked(1, session_date=day(1)), workout(1, date=day(1)))
    assert row(ledger, deduction_id(Place(1)))["package_id"] is None
    assert package(ledger).left == 0
    assert figures(ledger) == (3, 1, 0, 3, -1, -1)


def test_passing_time_again_expires_nothing_more() -> None:
    ledger = ending(3)
    ledger.pass_time(END + EXPIRY_GRACE)
    ledger.pass_time(END + EXPIRY_GRACE + timedelta(days=1))
    assert len(rows(ledger, EntryKind.EXPIRY)) == 1
    assert figures(ledger)[3] == 3


def test_the_same_history_expires_the_same_whenever_time_passes() -> None:
    expiries = []
    for late in (timedelta(0), timedelta(hours=5), timedelta(days=400)):
        ledger = apply(ending(3), booked(1, session_date=day(1)), workout(1, date=day(1)))
        ledger.pass_time(END + EXPIRY_GRACE + late)
        expiries.append((rows(ledger, EntryKind.EXPIRY), [a.event_id for a in ledger.announced]))
    assert expiries[0] == expiries[1] == expiries[2]


def test_a_grace_of_the_ledgers_own_is_waited_for() -> None:
    ledger = ending(3)
    ledger.expiry_grace = timedelta(hours=1)
    ledger.pass_time(END + timedelta(hours=1))
    assert package(ledger).closed


def test_a_package_ending_within_the_notice_is_announced_once() -> None:
    ledger = apply(ending(3), booked(1, session_date=day(1)), workout(1, date=day(1)))
    ledger.pass_time(END - EXPIRY_NOTICE)
    ledger.pass_time(END - timedelta(days=1))
    ledger.pass_time(END + timedelta(hours=1))
    [soon] = announced(ledger, events.PackageExpiringSoon)
    assert (soon.package_id, soon.valid_until, soon.sessions_left) == (package(ledger).id, END, 2)
    assert ledger.announced[-1].event_id == str(expiring_soon_id(package(ledger).id))
    assert package(ledger).warned


def test_a_package_ending_after_the_notice_is_not_announced_yet() -> None:
    ledger = ending(3)
    ledger.pass_time(END - EXPIRY_NOTICE - timedelta(seconds=1))
    assert announced(ledger, events.PackageExpiringSoon) == []


def test_a_used_up_package_is_not_announced_as_expiring() -> None:
    ledger = apply(ending(1), booked(1, session_date=day(1)), workout(1, date=day(1)))
    ledger.pass_time(END - timedelta(days=1))
    assert announced(ledger, events.PackageExpiringSoon) == []
    assert not package(ledger).warned


def test_an_unlimited_package_is_announced_as_expiring_with_no_count() -> None:
    ledger = apply(
        Ledger(), purchase(0, package_type=PackageType.UNLIMITED, at=MONDAY, valid_until=END)
    )
    ledger.pass_time(END - timedelta(days=1))
    [soon] = announced(ledger, events.PackageExpiringSoon)
    assert soon.sessions_left == 0
