"""Where the ledger's rules meet the database: a batch's part of the ledger, locked and
loaded before deciding, and what was decided written after, in one statement whatever the
number of rows (an `insert_rows` for each table written to): a batch of thousands of events
costs about as many round trips as one event does.

Concurrent transactions (two replicas, the API or the clock beside the consumer) never work
on the same session, purchase or client at once: loading takes transaction-scoped advisory
locks on each, always in the same order (sessions, then purchases and grant keys, then
clients, each sorted), so they cannot deadlock, and a workout and its session's booking
arriving on two partitions see each other, so a parked deduction is never stranded. A
client's packages are theirs alone: the client's lock covers them.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from functools import cache
from typing import Any

from sqlalchemy import (
    Select,
    TextClause,
    bindparam,
    delete,
    false,
    literal_column,
    select,
    text,
    true,
    union_all,
)
from sqlalchemy.dialects.postgresql import ARRAY, BIGINT, TEXT, UUID
from sqlalchemy.ext.asyncio import AsyncSession

from contracts import events
from contracts.envelope import Event
from contracts.events import (
    BOOKED_SESSION_TYPES,
    CancellationPolicy,
    PackageType,
    SessionType,
    WorkoutStatus,
)
from contracts.sessions import SessionStatus
from credits.models import (
    SESSION_KINDS,
    Balance,
    GroupPlace,
    KnownSession,
    LedgerEntry,
    Package,
    PackageWeek,
    PendingDeduction,
    WithdrawnDeduction,
)
from credits.rules import (
    DEFAULT_LOW_THRESHOLD,
    EXPIRY_GRACE,
    OPTIONAL_ENTRY_COLUMNS,
    ClientBalance,
    DeductionRequest,
    Entry,
    EntryKind,
    Ledger,
    LedgerEvent,
    Parked,
    Place,
    keyed_grant_id,
    purchase_grant_id,
    solo_id,
)
from credits.rules import KnownSession as Session
from credits.rules import Package as LedgerPackage
from servicekit.consumer import IdempotentConsumer
from servicekit.db import any_of, columns_of, insert_rows
from servicekit.outbox import Outbox
from servicekit.tables import processed_events

_ENTRY_COLUMNS = ("id", "user_id", "kind", "amount", *OPTIONAL_ENTRY_COLUMNS, "caused_by")
_SESSION_COLUMNS = (
    "session_id",
    "user_id",
    "trainer_id",
    "status",
    "session_date",
    "late_cancel_hours",
    "no_show_forfeits",
    "ended_at",
)
_PARKED_COLUMNS = (
    "session_id",
    "user_id",
    "trainer_id",
    "workout_id",
    "cause",
    "caused_by",
    "delivered_at",
    "group_place",
)
_BALANCE_COLUMNS = ("user_id", "total", "used", "expired", "held", "low")
#: Where a package's columns start in a row of `load_balances_and_packages`.
_FIRST_PACKAGE_COLUMN = len(_BALANCE_COLUMNS)
_PACKAGE_COLUMNS = (
    "package_id",
    "user_id",
    "package_type",
    "sessions",
    "solo_allowance",
    "weekly_cap",
    "valid_until",
    "purchased_at",
    "purchase_id",
    "name",
    "used",
    "expired",
    "solo_used",
    "closed",
    "warned",
)
#: What a package's row changes after it is opened.
_PACKAGE_PROGRESS = ("used", "expired", "solo_used", "closed", "warned")
_WEEK_COLUMNS = ("package_id", "week", "sessions")
_WITHDRAWN_COLUMNS = ("workout_id", "session_id")

_ENTRIES = LedgerEntry.__table__
_ENTRY_LOADED = tuple(
    _ENTRIES.c[name]
    for name in ("id", "user_id", "trainer_id", "package_id", "amount", "effective_at")
)


def entries_of_sessions(session_ids: list[int]) -> list[Select[Any]]:
    """The entries about these sessions, one lookup per kind. By session rather than by the
    entries' ids: session ids grow, so a batch's recent sessions sit together at the end of
    each kind's index (`one_deduction_per_place`, …), where random ids would touch a page of
    the primary key each, a cost that grows with the ledger. A literal kind per lookup lets
    PostgreSQL use that kind's partial index."""
    entries = _ENTRIES.c
    return [
        select(*_ENTRY_LOADED).where(
            entries.kind == literal_column(f"'{kind}'"),
            entries.session_id == any_of(session_ids, BIGINT),
        )
        for kind in SESSION_KINDS
    ]


_SESSIONS = KnownSession.__table__
_PLACES = GroupPlace.__table__
_PENDING = PendingDeduction.__table__
_WITHDRAWN = WithdrawnDeduction.__table__
_BALANCES = Balance.__table__
_PACKAGES = Package.__table__
_WEEKS = PackageWeek.__table__

#: Each table a batch writes rows to: its columns and what a row already there does.
_SESSION_UPDATES = ", ".join(f"{name} = excluded.{name}" for name in _SESSION_COLUMNS[3:])
_BALANCE_ADDITIONS = ", ".join(
    f"{name} = balances.{name} + excluded.{name}" for name in _BALANCE_COLUMNS[1:-1]
)
_PACKAGE_UPDATES = ", ".join(f"{name} = excluded.{name}" for name in _PACKAGE_PROGRESS)
_ROW_WRITES: dict[str, tuple[type[Any], tuple[str, ...], str]] = {
    "sessions": (
        KnownSession,
        _SESSION_COLUMNS,
        f"on conflict (session_id) do update set {_SESSION_UPDATES}",
    ),
    "places": (
        GroupPlace,
        _SESSION_COLUMNS,
        f"on conflict (session_id, user_id) do update set {_SESSION_UPDATES}",
    ),
    "parked": (PendingDeduction, _PARKED_COLUMNS, ""),
    "withdrawn": (WithdrawnDeduction, _WITHDRAWN_COLUMNS, "on conflict (workout_id) do nothing"),
    "entries": (LedgerEntry, _ENTRY_COLUMNS, ""),
    # Figures are added (the changes decided), `low` set: the client's lock is held.
    "balances": (
        Balance,
        _BALANCE_COLUMNS,
        f"on conflict (user_id) do update set {_BALANCE_ADDITIONS}, low = excluded.low",
    ),
    "packages": (
        Package,
        _PACKAGE_COLUMNS,
        f"on conflict (package_id) do update set {_PACKAGE_UPDATES}",
    ),
    "weeks": (
        PackageWeek,
        _WEEK_COLUMNS,
        "on conflict (package_id, week) do update set sessions = excluded.sessions",
    ),
}


@cache
def _writing(tables: tuple[str, ...]) -> TextClause:
    """One statement writing the rows of `tables`, each table's insert a CTE of it: one
    round trip, and no part for a table not written to (few are, in most transactions)."""
    inserts = []
    for name in tables:
        table, columns, then = _ROW_WRITES[name]
        inserts.append(insert_rows(table, columns, then=then, prefix=f"{name}_").text)
    if len(inserts) == 1:
        return text(inserts[0])
    ctes = ", ".join(f"write_{n} as ({sql})" for n, sql in enumerate(inserts[:-1]))
    return text(f"with {ctes} {inserts[-1]}")


#: Advisory lock classes of the two-key form (sessions use the one-key form: their id).
_PURCHASE_LOCKS = 1
_CLIENT_LOCKS = 2
_LOCK_SESSIONS = text(
    "select pg_advisory_xact_lock(id) from unnest(:ids) as id order by id"
).bindparams(bindparam("ids", type_=ARRAY(BIGINT)))
_LOCK_KEYS = text(
    "select pg_advisory_xact_lock(:kind, hashtext(key)) from unnest(:keys) as key order by key"
).bindparams(bindparam("keys", type_=ARRAY(TEXT)))


@dataclass(frozen=True, slots=True)
class Scope:
    """What a transaction will touch, to lock and load before deciding anything."""

    sessions: frozenset[int] = frozenset()
    #: Group places the batch names (every stored place of its sessions is loaded too).
    places: frozenset[Place] = frozenset()
    purchases: frozenset[str] = frozenset()
    grant_keys: frozenset[str] = frozenset()
    clients: frozenset[int] = frozenset()
    entries: frozenset[uuid.UUID] = frozenset()

    @classmethod
    def of(cls, batch: Iterable[Event[Any]]) -> Scope:
        sessions: set[int] = set()
        places: set[Place] = set()
        purchases: set[str] = set()
        clients: set[int] = set()
        entries: set[uuid.UUID] = set()
        for event in batch:
            payload = event.payload
            places.update(_places_named(payload))
            for name, into in (("session_id", sessions), ("user_id", clients)):
                value = getattr(payload, name, None)
                if value is not None:
                    into.add(value)
            purchase = getattr(payload, "purchase_id", None)
            if purchase is not None:
                purchases.add(purchase)
            if isinstance(payload, LedgerEvent):
                entries.add(uuid.UUID(event.id))
            elif _is_completed_solo(payload):
                entries.add(solo_id(payload.workout_id))
        return cls(
            sessions=frozenset(sessions),
            places=frozenset(places),
            purchases=frozenset(purchases),
            clients=frozenset(clients),
            entries=frozenset(entries),
        )


@dataclass(frozen=True, slots=True)
class LedgerStore:
    """The credits service's `BatchStore`, and the API's way to the same ledger."""

    outbox: Outbox
    #: The service's consumer, which reads the ledger topic back (see `Ledger.restore`).
    own_consumer: IdempotentConsumer
    #: Available credits at or below which a client is announced as running low.
    low_threshold: int = DEFAULT_LOW_THRESHOLD
    #: How long after its end a package still pays for sessions delivered before it.
    expiry_grace: timedelta = EXPIRY_GRACE

    async def load(self, db: AsyncSession, batch: Sequence[Event[Any]]) -> Ledger:
        return await self.load_scope(db, Scope.of(batch))

    @asynccontextmanager
    async def ledger_for(self, db: AsyncSession, scope: Scope) -> AsyncIterator[Ledger]:
        """The ledger loaded for `scope`, written when the block ends without an error."""
        ledger = await self.load_scope(db, scope)
        yield ledger
        await self.write(db, ledger)

    async def load_scope(self, db: AsyncSession, scope: Scope) -> Ledger:
        ledger = Ledger(low_threshold=self.low_threshold, expiry_grace=self.expiry_grace)
        session_ids = sorted(scope.sessions)
        if session_ids:
            await db.execute(_LOCK_SESSIONS, {"ids": session_ids})
        keys = sorted({f"purchase:{p}" for p in scope.purchases} | set(scope.grant_keys))
        await _lock_keys(db, _PURCHASE_LOCKS, keys)
        # Core rows rather than ORM objects throughout: a batch loads thousands of them.
        if session_ids:
            # One-to-one sessions and group places in one round trip.
            ids = any_of(session_ids, BIGINT)
            known, places = _SESSIONS.c, _PLACES.c
            for row in await db.execute(
                union_all(
                    select(
                        false().label("group_place"), *(known[n] for n in _SESSION_COLUMNS)
                    ).where(known.session_id == ids),
                    select(
                        true().label("group_place"), *(places[n] for n in _SESSION_COLUMNS)
                    ).where(places.session_id == ids),
                )
            ):
                place = Place.of(row.session_id, row.user_id, group=row.group_place)
                ledger.sessions[place] = _session_of(row)
        # Deductions are parked only for places not known yet (and settled when they are).
        unknown = [s for s in session_ids if Place(s) not in ledger.sessions]
        if unknown:
            pending = _PENDING.c
            for row in await db.execute(
                select(*pending)
                .where(pending.session_id == any_of(unknown, BIGINT))
                .order_by(pending.id)
            ):
                request = DeductionRequest(
                    **{name: getattr(row, name) for name in _PARKED_COLUMNS[:-1]},
                    group=row.group_place,
                )
                if request.place not in ledger.sessions:
                    ledger.parked.setdefault(request.place, []).append(Parked(request, row.id))
        if session_ids:
            withdrawn = _WITHDRAWN.c
            ledger.withdrawn.update(
                await db.scalars(
                    select(withdrawn.workout_id).where(
                        withdrawn.session_id == any_of(session_ids, BIGINT)
                    )
                )
            )
        if scope.purchases:
            for purchase_row in await db.execute(grants_of_purchases(sorted(scope.purchases))):
                ledger.purchase_grants[purchase_row.purchase_id] = purchase_row.id
        wanted = set(scope.entries)
        wanted.update(purchase_grant_id(p) for p in scope.purchases)
        wanted.update(keyed_grant_id(k) for k in scope.grant_keys)
        # Every entry about these sessions' places, found by session (`entries_of_sessions`).
        about = sorted({*session_ids, *(place.session_id for place in scope.places)})
        lookups = []
        if wanted:
            lookups.append(
                select(*_ENTRY_LOADED).where(
                    _ENTRIES.c.id == any_of(sorted(wanted), UUID(as_uuid=True))
                )
            )
        if about:
            lookups.extend(entries_of_sessions(about))
        if lookups:
            for entry_row in await db.execute(union_all(*lookups)):
                ledger.entries[entry_row.id] = Entry(
                    entry_row.user_id,
                    entry_row.trainer_id,
                    package_id=entry_row.package_id,
                    amount=entry_row.amount,
                    effective_at=entry_row.effective_at,
                )
        ledger.holds_loaded()
        clients = set(scope.clients)
        clients.update(session.user_id for session in ledger.sessions.values())
        clients.update(entry.user_id for entry in ledger.entries.values())
        await _lock_keys(db, _CLIENT_LOCKS, sorted(str(c) for c in clients))
        if clients:
            await load_balances_and_packages(db, ledger, sorted(clients))
        return ledger

    async def write(self, db: AsyncSession, ledger: Ledger) -> None:
        """Write everything decided since loading: the rows in one statement (`_writing`)."""
        rows: dict[str, list[dict[str, Any]]] = {
            "sessions": [
                {"session_id": place.session_id, **_session_row(session)}
                for place, session in ledger.sessions.items()
                if session.changed and not place.group
            ],
            "places": [
                {"session_id": place.session_id, **_session_row(session)}
                for place, session in ledger.sessions.items()
                if session.changed and place.group
            ],
            "parked": [
                _parked_row(p.request)
                for waiting in ledger.parked.values()
                for p in waiting
                if p.id is None
            ],
            "withdrawn": [
                {"workout_id": workout_id, "session_id": session_id}
                for workout_id, session_id in ledger.new_withdrawals.items()
            ],
            "entries": [entry.row for entry in ledger.entries.values() if entry.row is not None],
            "balances": [
                {
                    "user_id": user_id,
                    "total": b.total_change,
                    "used": b.used_change,
                    "expired": b.expired_change,
                    "held": b.held_change,
                    "low": b.low,
                }
                for user_id, b in ledger.balances.items()
                if b.changed
            ],
            "packages": [_package_row(p) for p in ledger.packages.values() if p.changed],
            "weeks": [
                {"package_id": package.id, "week": week, "sessions": package.weeks[week]}
                for package in ledger.packages.values()
                for week in sorted(package.changed_weeks)
            ],
        }
        if ledger.unparked:
            await db.execute(
                delete(PendingDeduction).where(
                    PendingDeduction.id == any_of(ledger.unparked, BIGINT)
                )
            )
        written = tuple(name for name in _ROW_WRITES if rows[name])
        if written:
            parameters: dict[str, list[Any]] = {}
            for name in written:
                parameters.update(columns_of(rows[name], _ROW_WRITES[name][1], prefix=f"{name}_"))
            await db.execute(_writing(written), parameters)
        announced = ledger.announced
        if ledger.unrecorded:
            # Rejections and heads-ups announced before (a rebuild reads them back from the
            # ledger topic first) are not announced again: looked for only now, as they are
            # rare.
            before = set(
                await db.scalars(
                    select(processed_events.c.event_id).where(
                        processed_events.c.consumer == self.own_consumer.name,
                        processed_events.c.event_id == any_of(sorted(ledger.unrecorded), TEXT),
                    )
                )
            )
            announced = [a for a in announced if a.event_id not in before]
        announcements = self.outbox.prepare_decided(announced)
        await self.outbox.insert(db, announcements)
        # Read back from the ledger topic, they are then cheap duplicates (a rebuild's empty
        # database has no such marks, and restores from them).
        await self.own_consumer.record_own_events(db, [a.event for a in announcements])


def _session_row(session: Session) -> dict[str, Any]:
    policy = session.policy
    return {
        "user_id": session.user_id,
        "trainer_id": session.trainer_id,
        "status": session.status,
        "session_date": session.session_date,
        "late_cancel_hours": policy.late_cancel_hours if policy else None,
        "no_show_forfeits": policy.no_show_forfeits if policy else None,
        "ended_at": session.ended_at,
    }


def _session_of(row: Any) -> Session:
    policy = None
    if row.late_cancel_hours is not None:
        policy = CancellationPolicy(
            late_cancel_hours=row.late_cancel_hours, no_show_forfeits=bool(row.no_show_forfeits)
        )
    return Session(
        row.user_id,
        row.trainer_id,
        SessionStatus(row.status),
        session_date=row.session_date,
        policy=policy,
        ended_at=row.ended_at,
    )


def _package_row(package: LedgerPackage) -> dict[str, Any]:
    return {
        "package_id": package.id,
        "user_id": package.user_id,
        "package_type": package.type,
        "sessions": package.sessions,
        "solo_allowance": package.solo_allowance,
        "weekly_cap": package.weekly_cap,
        "valid_until": package.valid_until,
        "purchased_at": package.purchased_at,
        "purchase_id": package.purchase_id,
        "name": package.name,
        **{name: getattr(package, name) for name in _PACKAGE_PROGRESS},
    }


def package_of(row: Mapping[Any, Any]) -> LedgerPackage:
    """A package as the rules know it, from its row's columns."""
    return LedgerPackage(
        id=row["package_id"],
        user_id=row["user_id"],
        type=PackageType(row["package_type"]),
        sessions=row["sessions"],
        purchased_at=row["purchased_at"],
        valid_until=row["valid_until"],
        solo_allowance=row["solo_allowance"],
        weekly_cap=row["weekly_cap"],
        purchase_id=row["purchase_id"],
        name=row["name"],
        **{name: row[name] for name in _PACKAGE_PROGRESS},
    )


async def load_balances_and_packages(db: AsyncSession, ledger: Ledger, clients: list[int]) -> None:
    """The clients' balances and every package of theirs, in one query (a package exists
    only beside its client's balance), then the weeks of the packages that cap them."""
    balances, packages = _BALANCES.c, _PACKAGES.c
    query = (
        select(
            *(balances[name] for name in _BALANCE_COLUMNS),
            # Labelled: a package has a `used` and an `expired` of its own (and read by
            # position: a row's mapping is made anew on each access).
            *(packages[name].label(f"package_{name}") for name in _PACKAGE_COLUMNS),
        )
        .select_from(_BALANCES.outerjoin(_PACKAGES, packages.user_id == balances.user_id))
        .where(balances.user_id == any_of(clients, BIGINT))
    )
    for row in await db.execute(query):
        if row.user_id not in ledger.balances:
            ledger.balances[row.user_id] = ClientBalance(
                total=row.total, used=row.used, held=row.held, expired=row.expired, low=row.low
            )
        if row.package_package_id is not None:
            columns = zip(_PACKAGE_COLUMNS, row[_FIRST_PACKAGE_COLUMN:], strict=True)
            package = package_of(dict(columns))
            ledger.packages[package.id] = package
    capped = [p.id for p in ledger.packages.values() if p.weekly_cap is not None]
    if capped:
        weeks = _WEEKS.c
        for week_row in await db.execute(
            select(weeks.package_id, weeks.week, weeks.sessions).where(
                weeks.package_id == any_of(capped, UUID(as_uuid=True))
            )
        ):
            ledger.packages[week_row.package_id].weeks[week_row.week] = week_row.sessions


def _is_completed_solo(payload: Any) -> bool:
    return (
        isinstance(payload, events.WorkoutLogged | events.WorkoutStatusChanged)
        and payload.session_type not in BOOKED_SESSION_TYPES
        and payload.status is WorkoutStatus.COMPLETED
    )


def _places_named(payload: Any) -> Iterable[Place]:
    """The group places an event may be about. An announcement of the ledger's own names a
    session and a client: it may be about either kind, and both are looked up."""
    if isinstance(payload, events.GroupSessionCompleted):
        return [Place(payload.session_id, u) for u in (*payload.attended, *payload.no_shows)]
    if isinstance(payload, events.ParticipantJoined | events.ParticipantLeft) or (
        isinstance(payload, events.WorkoutLogged | events.WorkoutStatusChanged)
        and payload.session_type is SessionType.GROUP
    ):
        assert payload.session_id is not None  # the contract's, for a group workout
        return [Place(payload.session_id, payload.user_id)]
    if isinstance(payload, LedgerEvent):
        session_id = getattr(payload, "session_id", None)
        if session_id is not None:
            return [Place(session_id, payload.user_id)]
    return []


def _parked_row(request: DeductionRequest) -> dict[str, Any]:
    return {
        **{name: getattr(request, name) for name in _PARKED_COLUMNS[:-1]},
        "group_place": request.group,
    }


def grants_of_purchases(purchase_ids: Sequence[str]) -> Select[tuple[str, uuid.UUID]]:
    """The grant entry of each purchase that has one. `kind = 'grant'` lets PostgreSQL read
    the partial unique index on purchases' grants; without it the lookup scans the whole
    ledger, which only grows."""
    entries = _ENTRIES.c
    return select(entries.purchase_id, entries.id).where(
        entries.kind == EntryKind.GRANT.value,
        entries.purchase_id == any_of(purchase_ids, TEXT),
    )


async def _lock_keys(db: AsyncSession, kind: int, keys: Sequence[str]) -> None:
    if keys:
        await db.execute(_LOCK_KEYS, {"kind": kind, "keys": list(keys)})
