"""What booking knows of a client's credits and when its API books anyway: the ledger's
latest balance wins, unlimited packages count while valid at the session's date, and only
staff and services may book a client who has nothing available."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from booking.access import may_book_without_credit
from booking.rules import CreditStanding, NoCreditAvailable, SessionBook, UnlimitedPackage
from booking.settings import Settings
from contracts import events
from contracts.events import CancellationPolicy, PackageType
from contracts.identity import Role
from servicekit.auth import Caller
from testkit.events import CLIENT, DATE

from .replay import decide

HINT = (
    "; a purchase reaches booking a moment after credits grants it, so one just made may not"
    " have arrived yet: try again shortly"
)


def balance(available: int, *, held: int = 0) -> events.Balance:
    return events.Balance(
        total=10, used=10 - available - held, remaining=available + held, held=held
    )


def granted(
    package_type: PackageType = PackageType.SESSIONS,
    *,
    valid_until: datetime | None = None,
    available: int = 10,
    package_id: uuid.UUID | None = None,
) -> events.CreditsGranted:
    terms: dict[str, Any] = {"sessions": 10} if package_type is PackageType.SESSIONS else {}
    return events.CreditsGranted(
        user_id=CLIENT,
        amount=terms.get("sessions", 0),
        balance=balance(available),
        package=events.GrantedPackage(
            package_type=package_type,
            valid_until=valid_until,
            package_id=package_id or uuid.uuid4(),
            purchased_at=DATE - timedelta(days=30),
            **terms,
        ),
    )


# --- the standing: may the client book? --------------------------------------------------


@pytest.mark.parametrize("available", [0, -3])
def test_nothing_available_and_no_unlimited_package_is_refused_with_the_reason(
    available: int,
) -> None:
    with pytest.raises(NoCreditAvailable) as refused:
        CreditStanding(CLIENT, available=available).refuse_booking(DATE)
    assert refused.value.reason == (
        f"client {CLIENT} has no session credits available (available {available})" + HINT
    )


def test_a_client_the_ledger_never_named_has_nothing_available() -> None:
    with pytest.raises(NoCreditAvailable, match=r"\(available 0\)"):
        CreditStanding(CLIENT).refuse_booking(DATE)


def test_a_credit_available_lets_the_client_book() -> None:
    assert CreditStanding(CLIENT, available=1).refuse_booking(DATE) is False


@pytest.mark.parametrize(
    "valid_until",
    [None, DATE + timedelta(seconds=1), DATE + timedelta(days=30)],
    ids=["never ends", "ends just after", "ends a month after"],
)
def test_an_unlimited_package_valid_at_the_sessions_date_lets_the_client_book(
    valid_until: datetime | None,
) -> None:
    standing = CreditStanding(CLIENT, unlimited=(UnlimitedPackage(CLIENT, valid_until),))
    assert standing.refuse_booking(DATE) is False


@pytest.mark.parametrize("ended", [DATE, DATE - timedelta(days=3)], ids=["at it", "before"])
def test_an_unlimited_package_ended_by_the_sessions_date_does_not(ended: datetime) -> None:
    standing = CreditStanding(
        CLIENT,
        unlimited=(
            UnlimitedPackage(CLIENT, ended - timedelta(days=60)),
            UnlimitedPackage(CLIENT, ended),
        ),
    )
    with pytest.raises(NoCreditAvailable) as refused:
        standing.refuse_booking(DATE)
    assert refused.value.reason == (
        f"client {CLIENT} has no session credits available (available 0), and their unlimited"
        f" package is valid only until {ended.isoformat().replace('+00:00', 'Z')}, before the"
        " session on 2026-01-15T10:00:00Z" + HINT
    )


def test_an_override_books_anyway_and_says_it_was_needed() -> None:
    assert CreditStanding(CLIENT).refuse_booking(DATE, overridden=True) is True


def test_an_override_not_needed_is_not_counted_as_one() -> None:
    assert CreditStanding(CLIENT, available=2).refuse_booking(DATE, overridden=True) is False


# --- who may book without credit ------------------------------------------------------------


@pytest.mark.parametrize(
    ("roles", "allowed"),
    [
        ({Role.STAFF}, True),
        ({Role.SERVICE}, True),
        ({Role.CLIENT}, False),
        ({Role.TRAINER}, False),
        ({Role.CLIENT, Role.TRAINER}, False),
    ],
)
def test_only_staff_and_services_may_book_without_credit(roles: set[Role], allowed: bool) -> None:
    assert may_book_without_credit(Caller("7", frozenset(roles))) is allowed


# --- what the ledger's events leave in a batch ----------------------------------------------


def test_the_latest_balance_of_each_client_wins() -> None:
    low = events.CreditsRunningLow(
        user_id=CLIENT, threshold=1, balance=balance(1, held=2), caused_by="e1"
    )
    expired = events.CreditsExpired(
        user_id=CLIENT,
        package_id=uuid.uuid4(),
        amount=1,
        valid_until=DATE,
        balance=events.Balance(total=10, used=9, remaining=0, expired=1),
    )
    book = decide(SessionBook(), granted(available=10), low)
    assert book.available == {CLIENT: 1}
    assert decide(book, expired).available == {CLIENT: 0}


def test_a_balance_before_holds_counts_what_remains_as_available() -> None:
    old = events.CreditsGranted(
        user_id=CLIENT, amount=10, balance=events.Balance(total=10, used=3, remaining=7)
    )
    assert decide(SessionBook(), old).available == {CLIENT: 7}


def test_a_forfeit_leaves_its_balance() -> None:
    forfeited = events.SessionCreditForfeited(
        user_id=CLIENT,
        session_id=5,
        trainer_id=456,
        cause="late-cancel",
        policy=CancellationPolicy(late_cancel_hours=24),
        balance=balance(4),
        caused_by="e2",
    )
    assert decide(SessionBook(), forfeited).available == {CLIENT: 4}


def test_only_unlimited_packages_are_kept_from_grants() -> None:
    package = uuid.uuid4()
    end = DATE + timedelta(days=30)
    book = decide(
        SessionBook(),
        granted(PackageType.SESSIONS),
        granted(PackageType.UNLIMITED, valid_until=end, available=0, package_id=package),
    )
    assert book.unlimited == {package: UnlimitedPackage(CLIENT, end)}
    assert book.available == {CLIENT: 0}


# --- the studio's policy ---------------------------------------------------------------------


def settings(**values: Any) -> Settings:
    return Settings(auth_issuer="https://identity.invalid", auth_jwks_file="jwks.json", **values)


@pytest.mark.parametrize(
    ("values", "policy"),
    [
        ({}, None),
        ({"studio_late_cancel_hours": 0, "studio_no_show_forfeits": False}, None),
        ({"studio_late_cancel_hours": 24}, CancellationPolicy(late_cancel_hours=24)),
        ({"studio_no_show_forfeits": True}, CancellationPolicy(no_show_forfeits=True)),
    ],
)
def test_a_policy_is_stamped_only_when_it_forfeits_something(
    values: dict[str, Any], policy: CancellationPolicy | None
) -> None:
    assert settings(**values).cancellation_policy() == policy


def test_the_policy_is_read_from_the_studios_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STUDIO_LATE_CANCEL_HOURS", "48")
    monkeypatch.setenv("STUDIO_NO_SHOW_FORFEITS", "true")
    assert settings().cancellation_policy() == CancellationPolicy(
        late_cancel_hours=48, no_show_forfeits=True
    )


@pytest.mark.parametrize("hours", [-1, 4 * 7 * 24 + 1])
def test_a_late_cancel_window_out_of_bounds_is_refused(hours: int) -> None:
    with pytest.raises(ValueError, match="STUDIO_LATE_CANCEL_HOURS"):
        settings(studio_late_cancel_hours=hours)


def test_an_unlimited_package_ends_when_its_validity_does() -> None:
    end = datetime(2026, 2, 1, tzinfo=UTC)
    package = UnlimitedPackage(CLIENT, end)
    assert package.valid_at(end - timedelta(microseconds=1))
    assert not package.valid_at(end)
    assert UnlimitedPackage(CLIENT, None).valid_at(datetime(8999, 1, 1, tzinfo=UTC))
