"""The ledger's own announcements read back (`Ledger.restore`), as a rebuild reads them before
its inputs: every kind of entry comes back as it was decided live, with its package, and
nothing is announced again."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from typing import Any, get_args

from contracts import events
from contracts.events import PackageType
from credits.handlers import HANDLERS
from credits.rules import EXPIRY_GRACE, EXPIRY_NOTICE, Ledger, LedgerEvent, Package
from testkit.events import CLIENT, booked, moved, purchase, workout

from .ledgers import MONDAY, POLICY, day
from .test_rules import apply, event

END = day(14)


def inputs() -> list[events.EventPayload]:
    """A hybrid package and an unlimited one with a weekly cap; solo workouts past the
    allowance; sessions delivered, cancelled late and missed."""
    return [
        purchase(
            4,
            "hybrid",
            package_type=PackageType.HYBRID,
            solo_workouts=1,
            at=MONDAY,
            valid_until=END,
        ),
        purchase(
            0,
            "unlimited",
            package_type=PackageType.UNLIMITED,
            weekly_cap=1,
            at=MONDAY,
            valid_until=day(10),
        ),
        workout(None, date=day(0)),
        workout(None, date=day(1)),
        *(booked(s, session_date=day(s), policy=POLICY) for s in (1, 2, 3, 4)),
        booked(5, session_date=day(5)),
        workout(1, date=day(1)),
        workout(2, date=day(2)),
        moved(events.SessionCancelled, 3, at=day(3) - timedelta(hours=2)),
        moved(events.SessionNoShow, 4, at=day(4)),
        workout(5, date=day(5)),
    ]


#: Session 5 cancelled once the hybrid package has expired: its credit expires at once.
LATE = moved(events.SessionCancelled, 5, at=END + EXPIRY_GRACE + timedelta(days=1))


def live_history() -> Ledger:
    """`inputs()` decided live, with a waiver and a staff grant, time passing past the end of
    both packages, and then `LATE`."""
    ledger = apply(Ledger(), *inputs())
    ledger.waive_forfeit(user_id=CLIENT, session_id=3, reason="the client was ill")
    ledger.grant_by_staff(user_id=CLIENT, amount=1, reason="goodwill", grant_key="k", at=day(6))
    ledger.pass_time(END - EXPIRY_NOTICE)
    ledger.pass_time(END + EXPIRY_GRACE)
    return apply(ledger, LATE)


def read_back(live: Ledger) -> Ledger:
    rebuilt = Ledger()
    for decided in live.announced:
        HANDLERS[type(decided.payload)](rebuilt, event(decided.payload, decided.event_id))
    return rebuilt


def entries(ledger: Ledger) -> dict[Any, Any]:
    return {id: e.row for id, e in ledger.entries.items()}


def packages(ledger: Ledger) -> list[Package]:
    """The packages as the store writes them: without what marks them for writing."""
    return [
        dataclasses.replace(p, changed=False, changed_weeks=set())
        for p in ledger.packages_of(CLIENT)
    ]


def test_the_history_announces_every_kind_of_ledger_event_but_rejections() -> None:
    live = live_history()
    kinds = {type(a.payload) for a in live.announced}
    assert kinds == set(get_args(LedgerEvent)) - {events.CreditDeductionRejected}


def test_every_entry_read_back_is_as_decided_live_and_nothing_is_announced_again() -> None:
    live = live_history()
    rebuilt = read_back(live)
    # The clock, once the history is read, closes what closed live without an entry.
    rebuilt.pass_time(END + EXPIRY_GRACE)
    assert rebuilt.announced == []
    assert entries(rebuilt) == entries(live)
    assert packages(rebuilt) == packages(live)
    b, expected = rebuilt.balance_of(CLIENT), live.balance_of(CLIENT)
    assert (b.total, b.used, b.expired) == (expected.total, expected.used, expected.expired)


def test_inputs_read_after_the_history_decide_nothing_new() -> None:
    live = live_history()
    rebuilt = apply(read_back(live), *inputs(), LATE)
    rebuilt.pass_time(END + EXPIRY_GRACE + timedelta(days=2))
    assert entries(rebuilt) == entries(live)
    assert packages(rebuilt) == packages(live)
    assert rebuilt.balance_of(CLIENT) == live.balance_of(CLIENT)
    assert rebuilt.balances[CLIENT].low is live.balances[CLIENT].low
    # Only notices may be decided again, under the ids live gave them: the store drops
    # those announced before.
    again = {a.event_id for a in rebuilt.announced}
    assert again <= rebuilt.unrecorded
    assert again <= {a.event_id for a in live.announced}


def test_a_rebuilt_balance_knows_whether_it_is_running_low() -> None:
    live = apply(Ledger(), purchase(3), booked(1), booked(2), workout(1), workout(2))
    rebuilt = read_back(live)
    assert rebuilt.balances[CLIENT].low is live.balances[CLIENT].low is True
    apply(live, purchase(5, "more"))
    rebuilt = read_back(live)
    assert rebuilt.balances[CLIENT].low is live.balances[CLIENT].low is False
