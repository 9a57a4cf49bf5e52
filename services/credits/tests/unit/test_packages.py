"""Package types and which package pays (`credits.rules`), through the handler table on
plain state: one test per rule at least."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from contracts import events
from contracts.events import PackageType
from credits.rules import (
    EXPIRY_GRACE,
    EntryKind,
    Ledger,
    Package,
    Packages,
    Place,
    deduction_id,
    expiry_id,
    keyed_grant_id,
    restoration_id,
    solo_id,
)
from testkit.events import CLIENT, booked, moved, purchase, status_changed, workout

from .ledgers import MONDAY, day, figures, package, package_id, row, rows
from .test_rules import announced, apply


def delivered(session_id: int, when: datetime) -> list[events.EventPayload]:
    """A session booked for `when` and its trainer-led workout logged completed then."""
    return [booked(session_id, session_date=when), workout(session_id, date=when)]


def unlimited(purchase_id: str = "order-1", **terms: Any) -> events.PackagePurchased:
    return purchase(0, purchase_id, package_type=PackageType.UNLIMITED, at=MONDAY, **terms)


def payer(ledger: Ledger, session_id: int) -> uuid.UUID | None:
    paid_by: uuid.UUID | None = row(ledger, deduction_id(Place(session_id)))["package_id"]
    return paid_by


# --- package types --------------------------------------------------------------------------


def test_a_purchase_without_a_type_is_a_package_of_sessions_that_never_expires() -> None:
    ledger = apply(Ledger(), purchase(10))
    opened = package(ledger)
    assert (opened.type, opened.sessions, opened.valid_until, opened.left) == (
        PackageType.SESSIONS,
        10,
        None,
        10,
    )
    [grant] = rows(ledger, EntryKind.GRANT)
    assert (grant["amount"], grant["package_id"]) == (10, opened.id)
    [granted] = announced(ledger, events.CreditsGranted)
    assert granted.package.package_type is PackageType.SESSIONS


def test_a_validity_in_days_ends_that_many_days_after_the_purchase() -> None:
    ledger = apply(Ledger(), purchase(5, at=MONDAY, valid_for_days=30))
    assert package(ledger).valid_until == MONDAY + timedelta(days=30)


def test_a_hybrid_package_pays_trainer_led_sessions_from_its_count() -> None:
    hybrid = purchase(4, package_type=PackageType.HYBRID, solo_workouts=2, at=MONDAY)
    ledger = apply(Ledger(), hybrid, *delivered(1, day(1)))
    assert payer(ledger, 1) == package(ledger).id
    assert (package(ledger).left, figures(ledger)[4]) == (3, 3)


def test_a_completed_solo_workout_counts_once_against_the_hybrid_allowance() -> None:
    solo = workout(None, date=day(1))
    ledger = apply(
        Ledger(),
        purchase(4, package_type=PackageType.HYBRID, solo_workouts=2, at=MONDAY),
        solo,
        solo,
    )
    assert package(ledger).solo_used == 1
    [counted] = rows(ledger, EntryKind.SOLO)
    assert (counted["id"], counted["amount"], counted["package_id"]) == (
        solo_id(solo.workout_id),
        0,
        package(ledger).id,
    )
    [announcement] = announced(ledger, events.SoloWorkoutCounted)
    assert (announcement.solo_used, announcement.solo_allowance, announcement.over) == (1, 2, 0)
    assert figures(ledger) == (4, 0, 0, 0, 4, 4)


def test_solo_workouts_past_the_allowance_still_count_and_show_as_over() -> None:
    ledger = apply(
        Ledger(),
        purchase(4, package_type=PackageType.HYBRID, solo_workouts=1, at=MONDAY),
        *(workout(None, date=day(n)) for n in range(3)),
    )
    assert [a.over for a in announced(ledger, events.SoloWorkoutCounted)] == [0, 1, 2]
    assert package(ledger).solo_used == 3


def test_a_solo_workout_counts_when_it_is_completed_not_before() -> None:
    planned = workout(None, status="planned", date=day(1))
    ledger = apply(
        Ledger(), purchase(4, package_type=PackageType.HYBRID, solo_workouts=2, at=MONDAY)
    )
    apply(ledger, planned)
    assert rows(ledger, EntryKind.SOLO) == []
    apply(ledger, status_changed(planned, "completed"))
    assert package(ledger).solo_used == 1


def test_solo_workouts_count_against_no_package_but_a_hybrid_one() -> None:
    ledger = apply(
        Ledger(),
        purchase(4, "sessions", at=MONDAY),
        purchase(0, "solo", package_type=PackageType.SOLO_ONLY, at=MONDAY),
        workout(None, date=day(1)),
    )
    assert rows(ledger, EntryKind.SOLO) == []
    assert announced(ledger, events.SoloWorkoutCounted) == []


def test_a_solo_only_package_pays_for_no_trainer_led_session() -> None:
    ledger = apply(
        Ledger(), purchase(0, package_type=PackageType.SOLO_ONLY, at=MONDAY), *delivered(1, day(1))
    )
    [deduction] = rows(ledger, EntryKind.DEDUCTION)
    assert (deduction["amount"], deduction["package_id"]) == (-1, None)
    assert figures(ledger) == (0, 1, 0, 0, -1, -1)


def test_an_unlimited_package_pays_with_nothing_while_valid() -> None:
    ledger = apply(Ledger(), unlimited(valid_until=day(28)), *delivered(1, day(1)))
    [deduction] = rows(ledger, EntryKind.DEDUCTION)
    assert (deduction["amount"], deduction["package_id"]) == (0, package(ledger).id)
    assert figures(ledger) == (0, 0, 0, 0, 0, 0)
    assert package(ledger).weeks == {}  # uncapped: no week is counted


def test_an_unlimited_package_pays_nothing_after_its_end() -> None:
    ledger = apply(Ledger(), unlimited(valid_until=day(7)), *delivered(1, day(7)))
    assert payer(ledger, 1) is None
    assert figures(ledger)[4] == -1


def test_past_the_weekly_cap_the_next_package_pays() -> None:
    ledger = apply(
        Ledger(),
        unlimited("unlimited", weekly_cap=2, valid_until=day(28)),
        purchase(5, "sessions", at=MONDAY),
        *delivered(1, day(0)),
        *delivered(2, day(2)),
        *delivered(3, day(6, 23)),
        *delivered(4, day(7, 0)),
    )
    assert [payer(ledger, s) for s in (1, 2, 3, 4)] == [
        package_id("unlimited"),
        package_id("unlimited"),
        package_id("sessions"),
        package_id("unlimited"),
    ]
    assert [r["amount"] for r in rows(ledger, EntryKind.DEDUCTION)] == [0, 0, -1, 0]
    assert package(ledger, "unlimited").weeks == {day(0, 0).date(): 2, day(7, 0).date(): 1}


def test_past_the_weekly_cap_with_no_other_package_the_session_is_charged_on_none() -> None:
    ledger = apply(Ledger(), unlimited(weekly_cap=1), *delivered(1, day(0)), *delivered(2, day(1)))
    assert [payer(ledger, s) for s in (1, 2)] == [package(ledger).id, None]
    assert figures(ledger)[4] == -1


def test_weeks_of_the_weekly_cap_start_on_monday_in_utc() -> None:
    sunday_evening = day(6, 23)
    # Monday 00:30 in UTC+2 is still Sunday in UTC: the same week.
    monday_east = datetime(2026, 1, 19, 0, 30, tzinfo=timezone(timedelta(hours=2)))
    monday_utc = datetime(2026, 1, 19, 0, 0, tzinfo=UTC)
    ledger = apply(
        Ledger(),
        unlimited(weekly_cap=1),
        *delivered(1, sunday_evening),
        *delivered(2, monday_east),
        *delivered(3, monday_utc),
    )
    assert [payer(ledger, s) for s in (1, 2, 3)] == [package(ledger).id, None, package(ledger).id]


def test_a_session_given_back_frees_its_place_under_the_weekly_cap() -> None:
    ledger = apply(
        Ledger(),
        unlimited(weekly_cap=1),
        *delivered(1, day(0)),
        moved(events.SessionCancelled, 1, at=day(0, 12)),
        *delivered(2, day(1)),
    )
    assert row(ledger, restoration_id(Place(1)))["amount"] == 0
    assert payer(ledger, 2) == package(ledger).id
    assert package(ledger).weeks == {day(0, 0).date(): 1}


# --- which package pays ---------------------------------------------------------------------


def test_the_package_that_expires_soonest_pays_first() -> None:
    ledger = apply(
        Ledger(),
        purchase(1, "never", at=MONDAY - timedelta(days=9)),
        purchase(1, "later", at=MONDAY - timedelta(days=8), valid_until=day(30)),
        purchase(1, "sooner", at=MONDAY - timedelta(days=7), valid_until=day(20)),
        *delivered(1, day(1)),
        *delivered(2, day(2)),
        *delivered(3, day(3)),
    )
    assert [payer(ledger, s) for s in (1, 2, 3)] == [
        package_id("sooner"),
        package_id("later"),
        package_id("never"),
    ]


def test_between_packages_ending_together_the_oldest_pays_first() -> None:
    end = day(30)
    ledger = apply(
        Ledger(),
        purchase(1, "newer", at=MONDAY - timedelta(days=1), valid_until=end),
        purchase(1, "older", at=MONDAY - timedelta(days=2), valid_until=end),
        purchase(1, "never-newer", at=MONDAY - timedelta(days=3)),
        purchase(1, "never-older", at=MONDAY - timedelta(days=4)),
        *(payload for s in (1, 2, 3, 4) for payload in delivered(s, day(s))),
    )
    assert [payer(ledger, s) for s in (1, 2, 3, 4)] == [
        package_id("older"),
        package_id("newer"),
        package_id("never-older"),
        package_id("never-newer"),
    ]


def test_a_package_not_valid_on_the_sessions_day_never_pays() -> None:
    ledger = apply(
        Ledger(),
        purchase(1, "ended", at=MONDAY, valid_until=day(2)),
        purchase(1, "never", at=MONDAY),
        *delivered(1, day(2)),
    )
    assert payer(ledger, 1) == package_id("never")
    assert package(ledger, "ended").left == 1


def test_the_sessions_day_is_its_booked_date_whenever_its_workout_is_logged() -> None:
    ledger = apply(
        Ledger(),
        purchase(1, "ended", at=MONDAY, valid_until=day(2)),
        booked(1, session_date=day(1)),
        workout(1, date=day(3)),
    )
    assert payer(ledger, 1) == package_id("ended")
    assert row(ledger, deduction_id(Place(1)))["effective_at"] == day(1)


def test_without_a_booked_date_the_session_is_paid_by_its_workouts_date() -> None:
    ledger = apply(
        Ledger(),
        purchase(1, "ended", at=MONDAY, valid_until=day(2)),
        purchase(1, "never", at=MONDAY),
        moved(events.SessionStarted, 1, at=day(1)),
        workout(1, date=day(3)),
    )
    assert payer(ledger, 1) == package_id("never")
    assert row(ledger, deduction_id(Place(1)))["effective_at"] == day(3)


def test_without_a_booked_date_a_completed_session_is_paid_by_its_completion_time() -> None:
    ledger = apply(
        Ledger(),
        purchase(1, "ended", at=MONDAY, valid_until=day(2)),
        moved(events.SessionCompleted, 1, at=day(1)),
    )
    assert payer(ledger, 1) == package_id("ended")
    assert row(ledger, deduction_id(Place(1)))["effective_at"] == day(1)


def test_an_expired_package_never_pays_even_for_a_session_before_its_end() -> None:
    ledger = apply(Ledger(), purchase(2, "ending", at=MONDAY, valid_until=day(2)))
    ledger.pass_time(day(2) + EXPIRY_GRACE)
    apply(ledger, *delivered(1, day(1)))
    assert payer(ledger, 1) is None
    assert figures(ledger) == (2, 1, 0, 2, -1, -1)


def test_the_deduction_names_the_package_that_paid_and_the_day_it_was_delivered() -> None:
    logged = workout(1, date=day(1, 11))
    ledger = apply(Ledger(), purchase(3, at=MONDAY), booked(1, session_date=day(1)), logged)
    entry = row(ledger, deduction_id(Place(1)))
    assert (entry["package_id"], entry["effective_at"], entry["workout_id"]) == (
        package(ledger).id,
        day(1),
        logged.workout_id,
    )
    [deducted] = announced(ledger, events.SessionCreditDeducted)
    assert (deducted.package_id, deducted.delivered_at) == (package(ledger).id, day(1))
    assert (package(ledger).used, package(ledger).left) == (1, 2)


def test_a_restoration_gives_the_credit_back_to_the_package_that_paid() -> None:
    ledger = apply(
        Ledger(),
        purchase(1, "never", at=MONDAY),
        purchase(1, "sooner", at=MONDAY, valid_until=day(20)),
        *delivered(1, day(1)),
        moved(events.SessionNoShow, 1, at=day(1, 12)),
    )
    assert row(ledger, restoration_id(Place(1)))["package_id"] == package_id("sooner")
    [restored] = announced(ledger, events.SessionCreditRestored)
    assert restored.package_id == package_id("sooner")
    assert (package(ledger, "sooner").left, package(ledger, "never").left) == (1, 1)


def test_a_credit_given_back_to_an_expired_package_expires_at_once() -> None:
    ledger = apply(Ledger(), purchase(1, at=MONDAY, valid_until=day(2)), *delivered(1, day(1)))
    ledger.pass_time(day(2) + EXPIRY_GRACE)
    assert rows(ledger, EntryKind.EXPIRY) == []  # nothing was left to expire
    apply(ledger, moved(events.SessionCancelled, 1, at=day(5)))
    expiry = row(ledger, expiry_id(package(ledger).id, restoration_id(Place(1))))
    assert (expiry["amount"], expiry["effective_at"], expiry["caused_by"]) == (
        -1,
        day(2),
        str(restoration_id(Place(1))),
    )
    [expired] = announced(ledger, events.CreditsExpired)
    assert (expired.amount, expired.caused_by) == (1, str(restoration_id(Place(1))))
    assert (package(ledger).used, package(ledger).expired, package(ledger).left) == (0, 1, 0)
    assert figures(ledger) == (1, 0, 0, 1, 0, 0)


def test_a_staff_grant_is_a_package_of_sessions_that_never_expires() -> None:
    ledger = Ledger()
    ledger.grant_by_staff(user_id=CLIENT, amount=2, reason="goodwill", grant_key="k", at=MONDAY)
    [granted] = ledger.packages_of(CLIENT)
    assert (granted.type, granted.sessions, granted.valid_until) == (PackageType.SESSIONS, 2, None)
    assert granted.id == keyed_grant_id("k")


def test_a_trainer_assisted_workout_charges_no_credit_and_counts_like_a_solo_one() -> None:
    assisted = events.WorkoutLogged(
        workout_id=uuid.uuid4(),
        user_id=CLIENT,
        session_type=events.SessionType.TRAINER_ASSISTED,
        trainer_id=456,
        plan_id="strength-base",
        title="Plan, Monday",
        date=day(1),
        status="completed",
    )
    ledger = apply(
        Ledger(),
        purchase(4, package_type=PackageType.HYBRID, solo_workouts=2, at=MONDAY),
        assisted,
        assisted,
    )
    assert rows(ledger, EntryKind.DEDUCTION) == []
    assert package(ledger).solo_used == 1
    assert figures(ledger) == (4, 0, 0, 0, 4, 4)


def test_packages_are_found_by_id_and_by_client_and_a_replacement_moves_between_clients() -> None:
    def made(user_id: int) -> Package:
        return Package(
            id=shared,
            user_id=user_id,
            type=PackageType.SESSIONS,
            sessions=10,
            purchased_at=datetime(2026, 1, 5, tzinfo=UTC),
        )

    shared = uuid.uuid4()
    packages = Packages()
    packages[shared] = made(1)
    packages[shared] = made(2)

    assert packages[shared].user_id == 2
    assert list(packages.of(1)) == []
    assert [p.user_id for p in packages.of(2)] == [2]
    assert len(packages) == 1
    del packages[shared]
    assert list(packages.of(2)) == []
    assert shared not in packages
