"""The credits store's tables in memory, for the properties over batchings.

Each batch's part of the ledger is loaded as `credits.store.LedgerStore.load_scope` loads its
`Scope`: the sessions, purchases, entries and clients the batch names (deductions parked only for
sessions not known yet), every package of a client that has a balance row, and the weeks of
capped packages. What was decided is written back as `LedgerStore.write` writes it: the rows
marked changed, balance figures added and `low` set, package progress and weeks replaced,
new entries inserted under a key that must be new, notices announced before left out. A rule
that counts on something the store neither loads nor writes shows up here.
"""

from __future__ import annotations

import dataclasses
import itertools
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from contracts.envelope import Event
from credits.handlers import HANDLERS
from credits.rules import (
    ClientBalance,
    DeductionRequest,
    Entry,
    KnownSession,
    Ledger,
    Package,
    Parked,
    Place,
    keyed_grant_id,
    purchase_grant_id,
    session_entry_ids,
)
from credits.store import Scope
from servicekit.domain import Announced

#: What a package's row changes after it is opened.
PROGRESS = ("used", "expired", "solo_used", "closed", "warned")


@dataclass
class Tables:
    #: One-to-one sessions and group places.
    sessions: dict[Place, KnownSession] = field(default_factory=dict)
    #: Parked deductions by their row's id.
    parked: dict[int, DeductionRequest] = field(default_factory=dict)
    withdrawn: dict[uuid.UUID, int] = field(default_factory=dict)
    entries: dict[uuid.UUID, dict[str, Any]] = field(default_factory=dict)
    balances: dict[int, ClientBalance] = field(default_factory=dict)
    packages: dict[uuid.UUID, Package] = field(default_factory=dict)
    weeks: dict[tuple[uuid.UUID, date], int] = field(default_factory=dict)
    #: Every announcement written to the outbox, in order.
    announced: list[Announced] = field(default_factory=list)
    serial: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def apply(self, batch: list[Event[Any]]) -> None:
        """One batch of events, decided on what it loads, then written."""
        ledger = self.load(Scope.of(batch))
        for event in batch:
            HANDLERS[type(event.payload)](ledger, event)
        self.write(ledger)

    def pass_time(self, now: datetime) -> None:
        """The clock at `now`, as one transaction for every client with a package that ends
        and is still open (those the clock finds due, and more: the rules decide)."""
        due = {
            p.user_id for p in self.packages.values() if not p.closed and p.valid_until is not None
        }
        ledger = self.load(Scope(clients=frozenset(due)))
        ledger.pass_time(now)
        self.write(ledger)

    def load(self, scope: Scope) -> Ledger:
        ledger = Ledger()
        for place, session in self.sessions.items():
            if place.session_id in scope.sessions:
                ledger.sessions[place] = dataclasses.replace(session, changed=False)
        unknown = {s for s in scope.sessions if Place(s) not in ledger.sessions}
        for row_id, request in sorted(self.parked.items()):
            if request.session_id in unknown and request.place not in ledger.sessions:
                ledger.parked.setdefault(request.place, []).append(Parked(request, row_id))
        ledger.withdrawn = {w for w, s in self.withdrawn.items() if s in scope.sessions}
        wanted = set(scope.entries) | {purchase_grant_id(p) for p in scope.purchases}
        wanted.update(keyed_grant_id(k) for k in scope.grant_keys)
        places = {Place(s) for s in scope.sessions} | scope.places | ledger.sessions.keys()
        wanted.update(id for place in places for id in session_entry_ids(place))
        for id in wanted & self.entries.keys():
            row = self.entries[id]
            ledger.entries[id] = Entry(
                row["user_id"],
                row["trainer_id"],
                package_id=row["package_id"],
                amount=row["amount"],
                effective_at=row["effective_at"],
            )
        ledger.holds_loaded()
        clients = set(scope.clients)
        clients.update(s.user_id for s in ledger.sessions.values())
        clients.update(e.user_id for e in ledger.entries.values())
        # A client's packages come with their balance row, and only with it.
        for user_id in clients & self.balances.keys():
            b = self.balances[user_id]
            ledger.balances[user_id] = ClientBalance(b.total, b.used, b.held, b.expired, b.low)
        for package in self.packages.values():
            if package.user_id in ledger.balances:
                weeks = {}
                if package.weekly_cap is not None:
                    weeks = {w: n for (id, w), n in self.weeks.items() if id == package.id}
                ledger.packages[package.id] = dataclasses.replace(
                    package, weeks=weeks, changed=False, changed_weeks=set()
                )
        return ledger

    def write(self, ledger: Ledger) -> None:
        for place, session in ledger.sessions.items():
            if session.changed:
                self.sessions[place] = dataclasses.replace(session, changed=False)
        for row_id in ledger.unparked:
            self.parked.pop(row_id, None)
        for waiting in ledger.parked.values():
            self.parked.update((next(self.serial), p.request) for p in waiting if p.id is None)
        for workout_id, session_id in ledger.new_withdrawals.items():
            self.withdrawn.setdefault(workout_id, session_id)
        for id, entry in ledger.entries.items():
            if entry.row is not None:
                assert id not in self.entries, f"entry {id} is written twice"
                self.entries[id] = dict(entry.row)
        for user_id, b in ledger.balances.items():
            if b.changed:
                row = self.balances.setdefault(user_id, ClientBalance())
                row.total += b.total_change
                row.used += b.used_change
                row.held += b.held_change
                row.expired += b.expired_change
                row.low = b.low
        for package in ledger.packages.values():
            if not package.changed:
                continue
            stored = self.packages.setdefault(
                package.id, dataclasses.replace(package, weeks={}, changed_weeks=set())
            )
            for name in PROGRESS:
                setattr(stored, name, getattr(package, name))
            for week in package.changed_weeks:
                self.weeks[(package.id, week)] = package.weeks[week]
        before = {a.event_id for a in self.announced}
        self.announced += [
            a
            for a in ledger.announced
            if a.event_id not in ledger.unrecorded or a.event_id not in before
        ]

    def balance_of(self, user_id: int) -> ClientBalance:
        return self.balances.get(user_id, ClientBalance())
