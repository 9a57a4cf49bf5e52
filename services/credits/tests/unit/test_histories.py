"""Random histories of one client under the credit policies (packages of every type, with and
without an end; bookings with and without a policy; deliveries, late and early cancels,
no-shows; solo workouts), delivered in random orders with duplicates and cut into random
batches, each decided on what the store would load for it (`tables.Tables`), then time
passed beyond every package's grace."""

from __future__ import annotations

import itertools
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from contracts import events
from contracts.envelope import Event, build_event
from contracts.events import CancellationPolicy, PackageType
from credits.rules import (
    CHARGES,
    HOLDING_STATUSES,
    RETURNS,
    EntryKind,
    deduction_id,
    forfeit_id,
    purchase_grant_id,
    week_of,
)
from testkit.events import CLIENT, booked, moved, purchase, status_changed, workout

from .ledgers import MONDAY, POLICY, day
from .tables import Tables

#: Long after every package of every history has ended, grace included.
LATER = MONDAY + timedelta(days=120)
POLICIES = (None, POLICY, CancellationPolicy(late_cancel_hours=6), CancellationPolicy())
#: How a session's story ends: delivered by a workout or by its completion, booked and
#: never delivered (`scheduled`, `started`), cancelled or missed.
ENDINGS = ("workout", "completed", "scheduled", "started", "cancelled", "no-show")
DELIVERED = ("workout", "completed")
HOLDING = ("scheduled", "started")


@dataclass(frozen=True)
class Story:
    """One client's events in the order they happened, and what they should come to."""

    events: list[Event[Any]]
    delivered: frozenset[int]
    forfeits: frozenset[int]
    held: int


def at(moment: datetime, payload: events.EventPayload, id: str) -> Event[Any]:
    """The event `id`, sent at `moment` (what dates a workout's change of status)."""
    envelope = build_event(payload, source="/tests", event_id=id, time=moment)
    return Event(envelope, payload)


@st.composite
def moments(draw: st.DrawFn, first_day: int, last_day: int) -> datetime:
    """An hour between two days after MONDAY."""
    return MONDAY + timedelta(hours=draw(st.integers(first_day * 24, last_day * 24)))


@st.composite
def purchases(
    draw: st.DrawFn, number: int, kinds: Sequence[PackageType], capped: bool
) -> events.PackagePurchased:
    """A package of one of `kinds`, an unlimited one with a weekly cap or not (`capped`)."""
    kind = draw(st.sampled_from(kinds))
    terms: dict[str, Any] = {"package_type": kind}
    counted = kind in (PackageType.SESSIONS, PackageType.HYBRID)
    if kind is PackageType.HYBRID:
        terms["solo_workouts"] = draw(st.integers(1, 2))
    if kind is PackageType.UNLIMITED and capped:
        terms["weekly_cap"] = draw(st.none() | st.integers(1, 2))
    bought = draw(moments(-3, 10))
    validity = draw(st.sampled_from(["never", "until", "days"]))
    if validity == "until":
        terms["valid_until"] = bought + timedelta(hours=draw(st.integers(1, 14 * 24)))
    elif validity == "days":
        terms["valid_for_days"] = draw(st.integers(1, 14))
    sessions = draw(st.integers(1, 3)) if counted else 0
    return purchase(sessions, f"p{number}", at=bought, **terms)


def forfeits(policy: CancellationPolicy | None, ending: str, date: datetime, end: datetime) -> bool:
    """Whether a session ended so forfeits its credit under `policy`."""
    if policy is None:
        return False
    if ending == "no-show":
        return policy.no_show_forfeits
    window = timedelta(hours=policy.late_cancel_hours)
    return ending == "cancelled" and policy.late_cancel_hours > 0 and date - end <= window


@dataclass(frozen=True)
class SessionStory:
    events: list[Event[Any]]
    ending: str
    forfeits: bool


@st.composite
def session_stories(draw: st.DrawFn, session_id: int) -> SessionStory:
    """A session booked under one of POLICIES and ended one of ENDINGS."""
    date = draw(moments(0, 20))
    policy = draw(st.sampled_from(POLICIES))
    ending = draw(st.sampled_from(ENDINGS))
    key = f"{session_id}"
    happened = [at(date, booked(session_id, session_date=date, policy=policy), key)]
    if ending in ("workout", "completed", "started"):
        happened.append(at(date, moved(events.SessionStarted, session_id, at=date), f"s{key}"))
    if ending == "workout":
        status = draw(st.sampled_from(["in_progress", "completed"]))
        for copy in range(draw(st.integers(1, 2))):
            logged = date + timedelta(minutes=draw(st.integers(0, 90)))
            trainer_led = workout(session_id, status=status, date=logged)
            happened.append(at(logged, trainer_led, f"w{key}-{copy}"))
            if status == "in_progress" and draw(st.booleans()):
                finished = logged + timedelta(minutes=45)
                done = status_changed(trainer_led, "completed")
                happened.append(at(finished, done, f"wc{key}-{copy}"))
    if ending == "completed":
        done_at = date + timedelta(hours=1)
        completed = moved(events.SessionCompleted, session_id, at=done_at)
        happened.append(at(done_at, completed, f"c{key}"))
    end = date + timedelta(minutes=15)
    if ending == "cancelled":
        end = date - timedelta(hours=draw(st.integers(-2, 72)))
        happened.append(at(end, moved(events.SessionCancelled, session_id, at=end), f"e{key}"))
    if ending == "no-show":
        happened.append(at(end, moved(events.SessionNoShow, session_id, at=end), f"e{key}"))
    return SessionStory(happened, ending, forfeits(policy, ending, date, end))


@st.composite
def solo_workouts(draw: st.DrawFn, number: int) -> list[Event[Any]]:
    """A solo workout logged completed, or planned then completed."""
    done = draw(moments(-2, 20))
    if draw(st.booleans()):
        return [at(done, workout(None, date=done), f"solo-{number}")]
    planned = workout(None, status="planned", date=done)
    return [
        at(done, planned, f"planned-{number}"),
        at(done, status_changed(planned, "completed"), f"solo-{number}"),
    ]


@st.composite
def stories(
    draw: st.DrawFn, kinds: Sequence[PackageType] = tuple(PackageType), capped: bool = True
) -> Story:
    """Packages of `kinds`, sessions and solo workouts, in the order they happened."""
    happened: list[Event[Any]] = []
    for number in range(draw(st.integers(1, 3))):
        bought = draw(purchases(number, kinds, capped))
        happened.append(at(bought.purchased_at, bought, f"purchase-{number}"))
    sessions = [draw(session_stories(n)) for n in range(1, draw(st.integers(1, 5)) + 1)]
    for number in range(draw(st.integers(0, 3))):
        happened += draw(solo_workouts(number))
    happened += [e for session in sessions for e in session.events]
    happened.sort(key=lambda e: e.occurred_at)
    return Story(
        happened,
        delivered=frozenset(n for n, s in enumerate(sessions, 1) if s.ending in DELIVERED),
        forfeits=frozenset(n for n, s in enumerate(sessions, 1) if s.forfeits),
        held=sum(s.ending in HOLDING for s in sessions),
    )


def purchases_and_bookings_first(received: list[Event[Any]]) -> list[Event[Any]]:
    """`received` with the purchases first, and each session's booking before anything else
    about the session (where it was, it stays as a copy)."""
    bought = [e for e in received if isinstance(e.payload, events.PackagePurchased)]
    bookings = {
        e.payload.session_id: e for e in received if isinstance(e.payload, events.SessionBooked)
    }
    ordered = []
    for received_event in received:
        if isinstance(received_event.payload, events.PackagePurchased):
            continue
        session_id = getattr(received_event.payload, "session_id", None)
        booking = bookings.pop(session_id, None) if session_id is not None else None
        if booking is not None and booking is not received_event:
            ordered.append(booking)
        ordered.append(received_event)
    return bought + ordered


@st.composite
def deliveries(
    draw: st.DrawFn, story: Story, *, known_first: bool = False
) -> list[list[Event[Any]]]:
    """The story's events in any order, some of them twice, cut into batches; with
    `known_first`, the packages and each session's booking before the rest."""
    received = draw(st.permutations(story.events))
    received += draw(st.lists(st.sampled_from(story.events), max_size=3))
    if known_first:
        received = purchases_and_bookings_first(received)
    cuts = sorted(draw(st.sets(st.integers(1, max(len(received) - 1, 1)), max_size=5)))
    bounds = [0, *cuts, len(received)]
    return [received[start:end] for start, end in itertools.pairwise(bounds)]


def play(batches: list[list[Event[Any]]]) -> Tables:
    """Each event once (the consumer drops what it has seen), a batch at a time, and then the
    clock past every grace."""
    seen: set[str] = set()
    tables = Tables()
    for batch in batches:
        fresh = []
        for received in batch:
            if received.id not in seen:
                seen.add(received.id)
                fresh.append(received)
        tables.apply(fresh)
    tables.pass_time(LATER)
    return tables


def rows(tables: Tables, kinds: frozenset[EntryKind] | set[EntryKind]) -> list[dict[str, Any]]:
    return [row for row in tables.entries.values() if row["kind"] in kinds]


def charges(tables: Tables) -> dict[uuid.UUID, tuple[EntryKind, int | None]]:
    """Grants, deductions and forfeits: what each is and which session it charges."""
    return {
        id: (row["kind"], row["session_id"])
        for id, row in tables.entries.items()
        if row["kind"] in {EntryKind.GRANT, *CHARGES, *RETURNS}
    }


def figures(tables: Tables) -> tuple[int, int, int, int]:
    """total, used, held, expired."""
    b = tables.balance_of(CLIENT)
    return (b.total, b.used, b.held, b.expired)


# --- whatever the order -----------------------------------------------------------------------


@settings(deadline=None, max_examples=150)
@given(st.data(), stories())
def test_no_order_charges_a_session_twice_and_every_figure_is_its_entries(
    data: st.DataObject, story: Story
) -> None:
    tables = play(data.draw(deliveries(story)))
    # No session is both delivered and ended, nor waived: nothing is given back.
    assert rows(tables, RETURNS) == []
    charged = Counter(row["session_id"] for row in rows(tables, CHARGES))
    assert set(charged.values()) <= {1}
    deducted = frozenset(r["session_id"] for r in rows(tables, {EntryKind.DEDUCTION}))
    forfeited = frozenset(r["session_id"] for r in rows(tables, {EntryKind.FORFEIT}))
    assert (deducted, forfeited) == (story.delivered, story.forfeits)
    announced = Counter(
        (type(a.payload), a.payload.session_id)
        for a in tables.announced
        if isinstance(a.payload, events.SessionCreditDeducted | events.SessionCreditForfeited)
    )
    assert set(announced.values()) <= {1}
    assert len(announced) == len(deducted) + len(forfeited)
    assert tables.parked == {}

    balance = tables.balance_of(CLIENT)
    assert balance.total == sum(r["amount"] for r in rows(tables, {EntryKind.GRANT}))
    assert balance.used == -sum(r["amount"] for r in rows(tables, CHARGES | RETURNS))
    assert balance.expired == -sum(r["amount"] for r in rows(tables, {EntryKind.EXPIRY}))
    holding = [
        id
        for id, s in tables.sessions.items()
        if s.status in HOLDING_STATUSES
        and not {deduction_id(id), forfeit_id(id)} & tables.entries.keys()
    ]
    assert balance.held == story.held == len(holding)
    assert balance.low is (balance.available <= 1)

    for package in tables.packages.values():
        named = [r for r in tables.entries.values() if r["package_id"] == package.id]
        paid = [r for r in named if r["kind"] in CHARGES]
        for charge in paid:
            assert package.valid_at(charge["effective_at"]), "drawn from an expired package"
        expired = -sum(r["amount"] for r in named if r["kind"] == EntryKind.EXPIRY)
        solo = sum(r["kind"] == EntryKind.SOLO for r in named)
        assert (package.expired, package.solo_used) == (expired, solo)
        if package.counted:
            assert package.used == -sum(r["amount"] for r in paid)
            assert package.left >= 0
            if package.valid_until is not None:
                assert package.closed
                assert package.left == 0
        else:
            assert {r["amount"] for r in paid} <= {0}
        if package.weekly_cap is not None:
            weeks = Counter(week_of(r["effective_at"]) for r in paid)
            assert {w: n for (id, w), n in tables.weeks.items() if id == package.id and n} == weeks
            assert max(weeks.values(), default=0) <= package.weekly_cap


@settings(deadline=None, max_examples=150)
@given(st.data(), stories())
def test_every_order_grants_deducts_forfeits_and_holds_the_same(
    data: st.DataObject, story: Story
) -> None:
    """Which package pays, and so what expires, may depend on the order (see below); what is
    charged for which session, granted and held does not."""
    expected = play([story.events])
    got = play(data.draw(deliveries(story)))
    assert charges(got) == charges(expected)
    assert figures(got)[::2] == figures(expected)[::2]


@settings(deadline=None, max_examples=150)
@given(st.data(), stories(capped=False))
def test_with_packages_and_bookings_known_first_every_order_ends_in_the_same_figures(
    data: st.DataObject, story: Story
) -> None:
    """Once the packages and each session's booking arrive before the rest, and no package
    has a weekly cap (see the last test), every order gives the same entries, each with its
    day, the same balance and the same use of each package: only which package paid which
    session (and so with what amount), and which hybrid package counted a solo workout, may
    differ."""
    expected = play([purchases_and_bookings_first(story.events)])
    got = play(data.draw(deliveries(story, known_first=True)))

    def ledger(tables: Tables) -> dict[uuid.UUID, tuple[Any, ...]]:
        return {
            id: (row["kind"], row["session_id"], row["effective_at"])
            for id, row in tables.entries.items()
        }

    def use(tables: Tables) -> dict[uuid.UUID, tuple[int, int, dict[date, int]]]:
        weeks = {
            p.id: {w: n for (id, w), n in tables.weeks.items() if id == p.id and n}
            for p in tables.packages.values()
        }
        return {p.id: (p.used, p.expired, weeks[p.id]) for p in tables.packages.values()}

    assert ledger(got) == ledger(expected)
    assert figures(got) == figures(expected)
    assert use(got) == use(expected)


# --- what the arrival order decides, as entries are written once, when decided -------------


def played(*arrivals: Event[Any]) -> Tables:
    """Events arriving one batch each, in this order."""
    return play([[arrival] for arrival in arrivals])


def session(session_id: int, when: datetime) -> tuple[Event[Any], Event[Any]]:
    """A session's booking for `when`, and its completion an hour later."""
    done = when + timedelta(hours=1)
    return (
        at(when, booked(session_id, session_date=when), f"booked-{session_id}"),
        at(done, moved(events.SessionCompleted, session_id, at=done), f"done-{session_id}"),
    )


def test_an_unlimited_package_bought_in_one_batch_pays_in_the_next() -> None:
    """Its grant moves no figure of the balance, yet the package must come back with it."""
    bought = purchase(0, package_type=PackageType.UNLIMITED, at=MONDAY)
    tables = play([[at(MONDAY, bought, "bought")], [*session(1, day(1))]])
    [deduction] = rows(tables, {EntryKind.DEDUCTION})
    assert (deduction["amount"], deduction["package_id"]) == (0, purchase_grant_id("order-1"))
    assert figures(tables) == (0, 0, 0, 0)


def test_a_package_read_after_a_sessions_charge_never_pays_for_it_and_its_credit_expires() -> None:
    bought = at(MONDAY, purchase(1, at=MONDAY, valid_until=day(7)), "bought")
    booking, done = session(1, day(1))
    in_time, late = played(bought, booking, done), played(booking, done, bought)
    assert figures(in_time) == (1, 1, 0, 0)
    assert figures(late) == (1, 1, 0, 1)
    assert [r["package_id"] for r in rows(late, {EntryKind.DEDUCTION})] == [None]


def test_a_session_charged_before_its_booking_is_read_is_dated_by_its_delivery() -> None:
    """Its completion an hour after the session, the package had ended by then."""
    bought = at(
        MONDAY, purchase(1, at=MONDAY, valid_until=day(1, 10) + timedelta(minutes=30)), "bought"
    )
    booking, done = session(1, day(1))
    in_time, late = played(bought, booking, done), played(bought, done, booking)
    [paid] = rows(in_time, {EntryKind.DEDUCTION})
    [unpaid] = rows(late, {EntryKind.DEDUCTION})
    assert (paid["effective_at"], paid["package_id"]) == (day(1), purchase_grant_id("order-1"))
    assert (unpaid["effective_at"], unpaid["package_id"]) == (day(1, 11), None)
    assert (figures(in_time)[3], figures(late)[3]) == (0, 1)


def test_a_solo_workout_read_before_any_hybrid_package_is_counted_by_none() -> None:
    hybrid = purchase(2, package_type=PackageType.HYBRID, solo_workouts=2, at=MONDAY)
    bought = at(MONDAY, hybrid, "bought")
    solo = at(day(1), workout(None, date=day(1)), "solo")
    assert len(rows(played(bought, solo), {EntryKind.SOLO})) == 1
    assert rows(played(solo, bought), {EntryKind.SOLO}) == []


def test_which_package_pays_is_decided_in_arrival_order_even_with_everything_known_first() -> None:
    """A counted package ending before an unlimited one with a cap of one a week pays first:
    spent on a session of a week the unlimited package could still pay, it is not there for
    the second session of a week it cannot."""
    packages = (
        at(MONDAY, purchase(1, "counted", at=MONDAY, valid_until=day(30)), "counted"),
        at(
            MONDAY,
            purchase(
                0,
                "unlimited",
                package_type=PackageType.UNLIMITED,
                weekly_cap=1,
                at=MONDAY,
                valid_until=day(40),
            ),
            "unlimited",
        ),
    )
    tuesday, wednesday, next_tuesday = session(1, day(1)), session(2, day(2)), session(3, day(8))
    first_week_first = played(*packages, *tuesday, *wednesday, *next_tuesday)
    next_week_first = played(*packages, *next_tuesday, *tuesday, *wednesday)
    assert figures(first_week_first) == (1, 1, 0, 0)
    assert figures(next_week_first) == (1, 2, 0, 0)
    assert [r["package_id"] for r in rows(next_week_first, {EntryKind.DEDUCTION})] == [
        purchase_grant_id("counted"),
        purchase_grant_id("unlimited"),
        None,
    ]
