"""Where the ledger's rules meet the database: a batch's part of the ledger, locked and
loaded before deciding, and what was decided written after, with one statement per table
whatever the number of rows (`insert_rows`): a batch of thousands of events costs about as
many round trips as one event does.

Concurrent transactions (two replicas, or the API beside the consumer) never work on the
same session, purchase or client at once: loading takes transaction-scoped advisory locks
on each, always in the same order (sessions, then purchases and grant keys, then clients,
each sorted), so they cannot deadlock, and a workout and its session's booking arriving
on two partitions see each other, so a parked deduction is never stranded.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, delete, select, text
from sqlalchemy.dialects.postgresql import ARRAY, BIGINT, TEXT, UUID
from sqlalchemy.ext.asyncio import AsyncSession

from contracts import events
from contracts.envelope import Event
from contracts.sessions import SessionStatus
from credits.models import Balance, KnownSession, LedgerEntry, PendingDeduction, WithdrawnDeduction
from credits.rules import (
    OPTIONAL_ENTRY_COLUMNS,
    ClientBalance,
    DeductionRequest,
    Entry,
    Ledger,
    Parked,
    deduction_id,
    keyed_grant_id,
    purchase_grant_id,
    restoration_id,
)
from credits.rules import KnownSession as Session
from servicekit.consumer import IdempotentConsumer
from servicekit.db import any_of, columns_of, insert_rows
from servicekit.outbox import Outbox
from servicekit.tables import processed_events

_ENTRY_COLUMNS = ("id", "user_id", "kind", "amount", *OPTIONAL_ENTRY_COLUMNS, "caused_by")
_SESSION_COLUMNS = ("session_id", "user_id", "trainer_id", "status")
_PARKED_COLUMNS = ("session_id", "user_id", "trainer_id", "workout_id", "cause", "caused_by")
_BALANCE_COLUMNS = ("user_id", "total", "used")

_ENTRIES = LedgerEntry.__table__
_SESSIONS = KnownSession.__table__
_PENDING = PendingDeduction.__table__
_WITHDRAWN = WithdrawnDeduction.__table__
_BALANCES = Balance.__table__

#: A batch's writes, one statement each whatever the number of rows (see `insert_rows`).
_INSERT_ENTRIES = insert_rows(LedgerEntry, _ENTRY_COLUMNS)
_INSERT_PARKED = insert_rows(PendingDeduction, _PARKED_COLUMNS)
_INSERT_WITHDRAWN = insert_rows(
    WithdrawnDeduction, ("workout_id", "session_id"), then="on conflict (workout_id) do nothing"
)
_UPSERT_SESSIONS = insert_rows(
    KnownSession,
    _SESSION_COLUMNS,
    then="on conflict (session_id) do update set status = excluded.status",
)
_ADD_TO_BALANCES = insert_rows(
    Balance,
    _BALANCE_COLUMNS,
    then="on conflict (user_id) do update"
    " set total = balances.total + excluded.total, used = balances.used + excluded.used",
)

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
    purchases: frozenset[str] = frozenset()
    grant_keys: frozenset[str] = frozenset()
    clients: frozenset[int] = frozenset()
    entries: frozenset[uuid.UUID] = frozenset()

    @classmethod
    def of(cls, batch: Iterable[Event[Any]]) -> Scope:
        sessions: set[int] = set()
        purchases: set[str] = set()
        clients: set[int] = set()
        entries: set[uuid.UUID] = set()
        for event in batch:
            payload = event.payload
            for name, into in (("session_id", sessions), ("user_id", clients)):
                value = getattr(payload, name, None)
                if value is not None:
                    into.add(value)
            purchase = getattr(payload, "purchase_id", None)
            if purchase is not None:
                purchases.add(purchase)
            if isinstance(payload, events.CreditsGranted | events.SessionCreditDeducted):
                entries.add(uuid.UUID(event.id))
        return cls(
            sessions=frozenset(sessions),
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

    async def load(self, db: AsyncSession, batch: Sequence[Event[Any]]) -> Ledger:
        return await self.load_scope(db, Scope.of(batch))

    @asynccontextmanager
    async def ledger_for(self, db: AsyncSession, scope: Scope) -> AsyncIterator[Ledger]:
        """The ledger loaded for `scope`, written when the block ends without an error."""
        ledger = await self.load_scope(db, scope)
        yield ledger
        await self.write(db, ledger)

    async def load_scope(self, db: AsyncSession, scope: Scope) -> Ledger:
        ledger = Ledger()
        session_ids = sorted(scope.sessions)
        if session_ids:
            await db.execute(_LOCK_SESSIONS, {"ids": session_ids})
        keys = sorted({f"purchase:{p}" for p in scope.purchases} | set(scope.grant_keys))
        await _lock_keys(db, _PURCHASE_LOCKS, keys)
        # Core rows rather than ORM objects throughout: a batch loads thousands of them.
        if session_ids:
            known = _SESSIONS.c
            for row in await db.execute(
                select(known.session_id, known.user_id, known.trainer_id, known.status).where(
                    known.session_id == any_of(session_ids, BIGINT)
                )
            ):
                status = SessionStatus(row.status)
                ledger.sessions[row.session_id] = Session(row.user_id, row.trainer_id, status)
        # Deductions are parked only for sessions not known yet (and settled when they are).
        unknown = [session_id for session_id in session_ids if session_id not in ledger.sessions]
        if unknown:
            pending = _PENDING.c
            for row in await db.execute(
                select(*pending)
                .where(pending.session_id == any_of(unknown, BIGINT))
                .order_by(pending.id)
            ):
                request = DeductionRequest(
                    session_id=row.session_id,
                    user_id=row.user_id,
                    trainer_id=row.trainer_id,
                    workout_id=row.workout_id,
                    cause=row.cause,
                    caused_by=row.caused_by,
                )
                ledger.parked.setdefault(row.session_id, []).append(Parked(request, row.id))
        if session_ids:
            withdrawn = _WITHDRAWN.c
            ledger.withdrawn.update(
                await db.scalars(
                    select(withdrawn.workout_id).where(
                        withdrawn.session_id == any_of(session_ids, BIGINT)
                    )
                )
            )
        wanted = set(scope.entries)
        wanted.update(purchase_grant_id(p) for p in scope.purchases)
        wanted.update(keyed_grant_id(k) for k in scope.grant_keys)
        for session_id in session_ids:
            wanted.update((deduction_id(session_id), restoration_id(session_id)))
        if wanted:
            entries = _ENTRIES.c
            for entry_row in await db.execute(
                select(entries.id, entries.user_id, entries.trainer_id).where(
                    entries.id == any_of(sorted(wanted), UUID(as_uuid=True))
                )
            ):
                ledger.entries[entry_row.id] = Entry(entry_row.user_id, entry_row.trainer_id)
        clients = set(scope.clients)
        clients.update(session.user_id for session in ledger.sessions.values())
        clients.update(entry.user_id for entry in ledger.entries.values())
        await _lock_keys(db, _CLIENT_LOCKS, sorted(str(c) for c in clients))
        if clients:
            balances = _BALANCES.c
            for balance_row in await db.execute(
                select(balances.user_id, balances.total, balances.used).where(
                    balances.user_id == any_of(sorted(clients), BIGINT)
                )
            ):
                ledger.balances[balance_row.user_id] = ClientBalance(
                    balance_row.total, balance_row.used
                )
        return ledger

    async def write(self, db: AsyncSession, ledger: Ledger) -> None:
        """Write everything decided since loading, one statement per table."""
        changed = [
            {"session_id": session_id, **_session_row(session)}
            for session_id, session in ledger.sessions.items()
            if session.changed
        ]
        if changed:
            await db.execute(_UPSERT_SESSIONS, columns_of(changed, _SESSION_COLUMNS))
        if ledger.unparked:
            await db.execute(
                delete(PendingDeduction).where(
                    PendingDeduction.id == any_of(ledger.unparked, BIGINT)
                )
            )
        parked = [
            _parked_row(p.request)
            for waiting in ledger.parked.values()
            for p in waiting
            if p.id is None
        ]
        if parked:
            await db.execute(_INSERT_PARKED, columns_of(parked, _PARKED_COLUMNS))
        if ledger.new_withdrawals:
            await db.execute(
                _INSERT_WITHDRAWN,
                {
                    "workout_id": list(ledger.new_withdrawals),
                    "session_id": list(ledger.new_withdrawals.values()),
                },
            )
        new_entries = [entry.row for entry in ledger.entries.values() if entry.row is not None]
        if new_entries:
            await db.execute(_INSERT_ENTRIES, columns_of(new_entries, _ENTRY_COLUMNS))
        changes = [
            {"user_id": user_id, "total": b.total_change, "used": b.used_change}
            for user_id, b in ledger.balances.items()
            if b.total_change or b.used_change
        ]
        if changes:
            await db.execute(_ADD_TO_BALANCES, columns_of(changes, _BALANCE_COLUMNS))
        announced = ledger.announced
        if ledger.rejected:
            # Rejections announced before (a rebuild reads them back from the ledger topic
            # first) are not announced again: looked for only now, as they are rare.
            before = set(
                await db.scalars(
                    select(processed_events.c.event_id).where(
                        processed_events.c.consumer == self.own_consumer.name,
                        processed_events.c.event_id == any_of(sorted(ledger.rejected), TEXT),
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
    return {"user_id": session.user_id, "trainer_id": session.trainer_id, "status": session.status}


def _parked_row(request: DeductionRequest) -> dict[str, Any]:
    return {name: getattr(request, name) for name in _PARKED_COLUMNS}


async def _lock_keys(db: AsyncSession, kind: int, keys: Sequence[str]) -> None:
    if keys:
        await db.execute(_LOCK_KEYS, {"kind": kind, "keys": list(keys)})
