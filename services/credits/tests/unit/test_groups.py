"""Group sessions (`credits.rules.Place`): each client's place is booked, held, charged,
cancelled, missed and given back as a one-to-one session is, so each attending client is
charged once per group session, whoever logs it and however often."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import pytest

from contracts import events
from contracts.envelope import Event
from contracts.events import CancellationPolicy
from credits.rules import (
    EntryKind,
    Ledger,
    Place,
    deduction_id,
    entry_id,
    forfeit_id,
    restoration_id,
)
from testkit.events import TRAINER, booked, purchase

from .ledgers import MONDAY, POLICY, day, figures, rows
from .tables import Tables
from .test_rules import OTHER, announced, apply, event

GROUP = 40
SESSION_DATE = day(3, hour=18)
JOINED_AT, LEFT_AT = day(0), day(1)
#: Five who join, one who joins late (after another left).
FIVE = [101, 102, 103, 104, 105]
LATE_JOINER = 106
LEAVER, NO_SHOW = 105, 104
ATTENDED = [101, 102, 103, LATE_JOINER]


def joined(
    user_id: int, *, policy: CancellationPolicy | None = None, at: datetime = JOINED_AT
) -> events.ParticipantJoined:
    return events.ParticipantJoined(
        session_id=GROUP,
        user_id=user_id,
        trainer_id=TRAINER,
        session_date=SESSION_DATE,
        at=at,
        policy=policy,
    )


def left(user_id: int, at: datetime = LEFT_AT) -> events.ParticipantLeft:
    return events.ParticipantLeft(session_id=GROUP, user_id=user_id, trainer_id=TRAINER, at=at)


def completed(
    attended: tuple[int, ...] = tuple(ATTENDED), no_shows: tuple[int, ...] = (NO_SHOW,)
) -> events.GroupSessionCompleted:
    return events.GroupSessionCompleted(
        session_id=GROUP,
        trainer_id=TRAINER,
        at=SESSION_DATE + timedelta(hours=1),
        attended=list(attended),
        no_shows=list(no_shows),
    )


def group_workout(user_id: int, trainer_id: int = TRAINER, **details: Any) -> events.WorkoutLogged:
    return events.WorkoutLogged(
        workout_id=uuid.uuid4(),
        user_id=user_id,
        session_type=events.SessionType.GROUP,
        session_id=GROUP,
        trainer_id=trainer_id,
        group_size=5,
        title="Circuit class",
        date=SESSION_DATE,
        status="completed",
        **details,
    )


def purchases() -> list[events.EventPayload]:
    return [
        purchase(10, purchase_id=f"order-{client}", user_id=client, at=MONDAY)
        for client in [*FIVE, LATE_JOINER]
    ]


def the_class(policy: CancellationPolicy | None = None) -> list[events.EventPayload]:
    """Five join, one leaves, one joins late, each who came logs a workout, then the
    trainer completes it with one no-show."""
    return [
        *purchases(),
        *(joined(client, policy=policy) for client in FIVE),
        left(LEAVER),
        joined(LATE_JOINER, policy=policy, at=day(2)),
        *(group_workout(client) for client in ATTENDED),
        completed(),
    ]


def charged(ledger: Ledger | Tables) -> dict[int, int]:
    """Deductions per client."""
    entries = (
        [e.row for e in ledger.entries.values() if e.row is not None]
        if isinstance(ledger, Ledger)
        else list(ledger.entries.values())
    )
    counts: dict[int, int] = {}
    for row in entries:
        if row is not None and row["kind"] == EntryKind.DEDUCTION:
            counts[row["user_id"]] = counts.get(row["user_id"], 0) + 1
    return counts


def test_each_client_who_attended_is_charged_once() -> None:
    ledger = apply(Ledger(), *the_class())
    assert charged(ledger) == dict.fromkeys(ATTENDED, 1)
    causes = {row["user_id"]: row["cause"] for row in rows(ledger, EntryKind.DEDUCTION)}
    assert set(causes.values()) == {events.WORKOUT_LOGGED}
    for client in ATTENDED:
        assert figures(ledger, client) == (10, 1, 0, 0, 9, 9)
    # Neither the one who left nor the one who did not show pays (no policy), nor holds.
    for client in (LEAVER, NO_SHOW):
        assert figures(ledger, client) == (10, 0, 0, 0, 10, 10)


def test_every_event_twice_and_a_second_logging_charge_no_more() -> None:
    story = the_class()
    ledger = apply(Ledger(), *story, *story, *(group_workout(c) for c in ATTENDED))
    assert charged(ledger) == dict.fromkeys(ATTENDED, 1)


def test_the_completion_alone_charges_who_attended_with_its_own_cause() -> None:
    story = [e for e in the_class() if not isinstance(e, events.WorkoutLogged)]
    ledger = apply(Ledger(), *story)
    assert charged(ledger) == dict.fromkeys(ATTENDED, 1)
    assert {row["cause"] for row in rows(ledger, EntryKind.DEDUCTION)} == {events.SESSION_COMPLETED}


def test_a_place_holds_a_credit_until_it_is_charged_or_given_up() -> None:
    ledger = apply(Ledger(), *purchases(), joined(101), joined(105))
    assert figures(ledger, 101) == (10, 0, 1, 0, 10, 9)
    apply(ledger, left(105), group_workout(101))
    assert figures(ledger, 105) == (10, 0, 0, 0, 10, 10)
    assert figures(ledger, 101) == (10, 1, 0, 0, 9, 9)


def test_places_are_keyed_by_client_and_one_to_one_ids_stay_as_they_were() -> None:
    assert deduction_id(Place(7)) == entry_id("deduction", 7)
    assert deduction_id(Place(7, 101)) == entry_id("deduction", 7, 101)
    assert deduction_id(Place(7, 101)) != deduction_id(Place(7, 102))


def test_a_workout_before_the_client_joined_waits_for_the_place() -> None:
    ledger = apply(Ledger(), *purchases(), group_workout(101))
    assert charged(ledger) == {}
    assert [p.request.user_id for p in ledger.parked[Place(GROUP, 101)]] == [101]
    apply(ledger, joined(101))
    assert charged(ledger) == {101: 1}
    assert ledger.parked == {}


def test_a_workout_of_a_client_who_left_or_for_another_trainer_is_rejected() -> None:
    ledger = apply(Ledger(), *purchases(), joined(101), joined(102), left(102))
    apply(ledger, group_workout(102), group_workout(101, trainer_id=OTHER))
    assert charged(ledger) == {}
    reasons = [r.reason for r in announced(ledger, events.CreditDeductionRejected)]
    assert any("cancelled" in reason for reason in reasons)
    assert any("booked for" in reason for reason in reasons)


def test_a_late_leaver_and_a_no_show_forfeit_under_the_policy() -> None:
    story = the_class(policy=POLICY)
    late = left(LEAVER, at=SESSION_DATE - timedelta(hours=2))
    story = [late if isinstance(e, events.ParticipantLeft) else e for e in story]
    ledger = apply(Ledger(), *story)
    forfeits = {row["user_id"]: row["cause"] for row in rows(ledger, EntryKind.FORFEIT)}
    assert forfeits == {LEAVER: events.LATE_CANCEL, NO_SHOW: events.NO_SHOW}
    assert forfeit_id(Place(GROUP, LEAVER)) in ledger.entries
    assert charged(ledger) == dict.fromkeys(ATTENDED, 1)


def test_a_no_show_after_a_workout_gets_its_credit_back() -> None:
    ledger = apply(Ledger(), *purchases(), joined(104), group_workout(104))
    apply(ledger, completed(attended=(), no_shows=(104,)))
    assert restoration_id(Place(GROUP, 104)) in ledger.entries
    assert figures(ledger, 104) == (10, 0, 0, 0, 10, 10)


def test_a_group_called_off_releases_every_place_and_forfeits_nothing() -> None:
    cancelled = events.GroupSessionCancelled(
        session_id=GROUP, trainer_id=TRAINER, at=SESSION_DATE - timedelta(hours=1)
    )
    ledger = apply(Ledger(), *purchases(), *(joined(c, policy=POLICY) for c in FIVE))
    apply(ledger, group_workout(101), cancelled)
    assert rows(ledger, EntryKind.FORFEIT) == []
    assert restoration_id(Place(GROUP, 101)) in ledger.entries
    for client in FIVE:
        assert figures(ledger, client) == (10, 0, 0, 0, 10, 10)


def test_a_one_to_one_session_and_a_group_place_of_one_client_are_apart() -> None:
    """A one-to-one session shares no entry with a group place, even of the same client."""
    one_to_one = booked(GROUP + 1, user_id=101)
    ledger = apply(
        Ledger(),
        *purchases(),
        one_to_one,
        joined(101),
        group_workout(101),
        events.SessionCompleted(
            session_id=GROUP + 1, user_id=101, trainer_id=TRAINER, at=SESSION_DATE
        ),
    )
    assert charged(ledger) == {101: 2}


@pytest.mark.parametrize("size", [1, 2, 3, 5, 8, 40])
def test_any_batching_and_a_read_back_give_the_same_ledger(size: int) -> None:
    """Batches of `size` (as the store loads and writes them), every event twice; then a
    rebuild from the announcements alone records the same entries and balances."""
    story: list[Event[Any]] = [
        event(p, f"group-{n}") for n, p in enumerate(the_class(policy=POLICY))
    ]
    records = [e for e in story for _ in range(2)]
    tables = Tables()
    for start in range(0, len(records), size):
        tables.apply(records[start : start + size])
    assert charged(tables) == dict.fromkeys(ATTENDED, 1)
    assert {r["user_id"] for r in tables.entries.values() if r["kind"] == "forfeit"} == {NO_SHOW}

    rebuilt = Tables()
    announcements = [event(a.payload, a.event_id) for a in tables.announced]
    for start in range(0, len(announcements), size):
        rebuilt.apply(announcements[start : start + size])
    rebuilt.apply(records)  # the inputs again: nothing new
    assert rebuilt.entries.keys() == tables.entries.keys()
    for client in [*FIVE, LATE_JOINER]:
        before, after = tables.balance_of(client), rebuilt.balance_of(client)
        assert (after.total, after.used, after.held) == (before.total, before.used, before.held)
