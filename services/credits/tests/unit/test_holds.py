"""Holds at booking and the running-low heads-up (`credits.rules`): a booked session
reserves a credit until it is delivered or ended, and a client whose available credits fall
to the threshold is told once per crossing."""

from __future__ import annotations

import pytest

from contracts import events
from credits.rules import Ledger, Place, running_low_id
from testkit.events import CLIENT, booked, moved, purchase, workout

from .ledgers import day, figures
from .test_rules import announced, apply


def test_a_booked_session_holds_a_credit() -> None:
    ledger = apply(Ledger(), purchase(10), booked(1))
    assert figures(ledger) == (10, 0, 1, 0, 10, 9)
    assert ledger.sessions[Place(1)].held


def test_a_session_in_progress_still_holds_its_credit() -> None:
    ledger = apply(Ledger(), purchase(10), booked(1), moved(events.SessionStarted, 1))
    assert figures(ledger)[2] == 1


@pytest.mark.parametrize(
    "delivery",
    [workout(1), workout(1, status="in_progress"), moved(events.SessionCompleted, 1)],
    ids=["workout-completed", "workout-in-progress", "session-completed"],
)
def test_delivery_turns_the_hold_into_the_deduction(delivery: events.EventPayload) -> None:
    ledger = apply(Ledger(), purchase(10), booked(1), delivery)
    assert figures(ledger) == (10, 1, 0, 0, 9, 9)
    assert not ledger.sessions[Place(1)].held


@pytest.mark.parametrize("ending", [events.SessionCancelled, events.SessionNoShow])
def test_a_session_ended_undelivered_releases_its_hold(
    ending: type[events.SessionStatusEvent],
) -> None:
    ledger = apply(Ledger(), purchase(10), booked(1), moved(ending, 1))
    assert figures(ledger) == (10, 0, 0, 0, 10, 10)


def test_a_delivery_read_before_its_booking_never_holds() -> None:
    ledger = apply(Ledger(), purchase(10), workout(1), booked(1))
    assert figures(ledger) == (10, 1, 0, 0, 9, 9)


def test_a_booking_past_the_available_credits_is_held_all_the_same() -> None:
    ledger = apply(Ledger(), purchase(1), booked(1), booked(2), booked(2))
    assert figures(ledger) == (1, 0, 2, 0, 1, -1)


def test_running_low_is_announced_once_when_available_falls_to_the_threshold() -> None:
    ledger = apply(Ledger(), purchase(3), booked(1), booked(2), booked(3))
    [low] = announced(ledger, events.CreditsRunningLow)
    assert (low.threshold, low.balance.available, low.caused_by) == (1, 1, "hold:2:True")
    assert str(running_low_id(CLIENT, "hold:2:True")) in {a.event_id for a in ledger.announced}
    assert ledger.balances[CLIENT].low


def test_running_low_is_announced_again_only_after_rising_above_the_threshold() -> None:
    ledger = apply(Ledger(), purchase(2), booked(1))
    apply(ledger, moved(events.SessionCancelled, 1), booked(2))
    assert len(announced(ledger, events.CreditsRunningLow)) == 2
    apply(ledger, workout(2), booked(3))
    assert len(announced(ledger, events.CreditsRunningLow)) == 2


def test_a_client_never_above_the_threshold_is_not_announced() -> None:
    ledger = apply(Ledger(), purchase(1), booked(1), workout(1))
    assert announced(ledger, events.CreditsRunningLow) == []


def test_running_low_uses_the_ledgers_threshold() -> None:
    ledger = apply(Ledger(low_threshold=5), purchase(7), booked(1), booked(2))
    [low] = announced(ledger, events.CreditsRunningLow)
    assert (low.threshold, low.balance.available) == (5, 5)


def test_running_low_ids_depend_on_the_history_alone() -> None:
    def history() -> list[str]:
        ledger = apply(
            Ledger(),
            purchase(3, at=day(0)),
            booked(1),
            booked(2),
            moved(events.SessionCancelled, 1),
            booked(3),
        )
        return [
            a.event_id for a in ledger.announced if isinstance(a.payload, events.CreditsRunningLow)
        ]

    assert history() == history()
    assert len(history()) == 2
