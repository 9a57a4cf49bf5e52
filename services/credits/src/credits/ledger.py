"""The credit ledger's use cases, in the business's words, a batch at a time.

A `Ledger` is loaded for what one transaction touches (the sessions, clients, purchases and
entries its events name), takes its decisions in memory, one event after another in their
order, and `write`s them with a handful of set-wise statements: a batch of thousands of
events costs about as many round trips to the database as one event does.

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
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy import bindparam, delete, func, select, text
from sqlalchemy.dialects.postgresql import ARRAY, BIGINT, TEXT, UUID
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from contracts import events
from contracts.envelope import Event
from credits.models import (
    Balance,
    EntryKind,
    KnownSession,
    LedgerEntry,
    PendingDeduction,
    SessionStatus,
    WithdrawnDeduction,
)
from servicekit.consumer import IdempotentConsumer
from servicekit.db import any_of, columns_of, insert_rows
from servicekit.outbox import Announcement, Outbox
from servicekit.tables import processed_events

#: Entry ids are uuid5 of the business key in this namespace, so the same business action
#: always gets the same id (and the same event id when it is announced).
LEDGER_NAMESPACE = uuid.UUID("6b1c8f0e-2f4a-5b7d-9c3e-1a2b3c4d5e6f")

Cause = Literal["workout-logged", "session-completed"]
#: What a staff grant's entry names as its cause: the request itself leaves no event behind
#: but the grant's own announcement (the `Idempotency-Key` lives on in the entry's id).
STAFF_GRANT = "staff-grant"
CANCELLED_STATUSES = frozenset({SessionStatus.CANCELLED, SessionStatus.NO_SHOW})

#: What the credits service reads back from its own topic (see `Ledger.restore`).
LedgerEvent = (
    events.CreditsGranted
    | events.SessionCreditDeducted
    | events.SessionCreditRestored
    | events.CreditDeductionRejected
)

#: Columns an entry may leave out (NULL); every new entry's row names them all.
_OPTIONAL_ENTRY_COLUMNS = (
    "purchase_id", "session_id", "trainer_id", "workout_id", "cause", "reason",
)  # fmt: skip
_ENTRY_COLUMNS = ("id", "user_id", "kind", "amount", *_OPTIONAL_ENTRY_COLUMNS, "caused_by")
_SESSION_COLUMNS = ("session_id", "user_id", "trainer_id", "status")
_PARKED_COLUMNS = ("session_id", "user_id", "trainer_id", "workout_id", "cause", "caused_by")
_BALANCE_COLUMNS = ("user_id", "total", "used")
_WITHDRAWN_COLUMNS = ("workout_id", "session_id")

_ENTRIES = LedgerEntry.__table__
_SESSIONS = KnownSession.__table__
_PENDING = PendingDeduction.__table__
_WITHDRAWN = WithdrawnDeduction.__table__
_BALANCES = Balance.__table__

#: A batch's writes, one statement each whatever the number of rows (see `insert_rows`).
_INSERT_ENTRIES = insert_rows(LedgerEntry, _ENTRY_COLUMNS)
_INSERT_PARKED = insert_rows(PendingDeduction, _PARKED_COLUMNS)
_INSERT_WITHDRAWN = insert_rows(
    WithdrawnDeduction, _WITHDRAWN_COLUMNS, then="on conflict (workout_id) do nothing"
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


def entry_id(*business_key: object) -> uuid.UUID:
    return uuid.uuid5(LEDGER_NAMESPACE, ":".join(str(part) for part in business_key))


def deduction_id(session_id: int) -> uuid.UUID:
    return entry_id("deduction", session_id)


def restoration_id(session_id: int) -> uuid.UUID:
    return entry_id("restoration", session_id)


def purchase_grant_id(purchase_id: str) -> uuid.UUID:
    return entry_id("grant", "purchase", purchase_id)


def rejection_id(caused_by: str) -> uuid.UUID:
    return entry_id("rejection", caused_by)


def withdrawal_id(workout_id: uuid.UUID) -> uuid.UUID:
    """The id of the rejection announcing a withdrawn deduction: a rebuild tells it apart
    from other rejections by it (see `Ledger.restore`)."""
    return entry_id("withdrawal", workout_id)


def _cause_of_unattributed(event: Event[Any]) -> str:
    """An announcement without `causedBy`: a staff grant's, or one made before the field."""
    if isinstance(event.payload, events.CreditsGranted) and event.payload.purchase_id is None:
        return STAFF_GRANT
    return event.id


@dataclass(frozen=True, slots=True)
class DeductionRequest:
    """One reason to deduct a session's credit: a trainer-led workout or a completed session."""

    session_id: int
    user_id: int
    trainer_id: int
    workout_id: uuid.UUID | None
    cause: Cause
    caused_by: str


@dataclass(frozen=True, slots=True)
class _Parked:
    """A deduction waiting for its session's booking; `id` None until it is written."""

    request: DeductionRequest
    id: int | None = None


@dataclass(slots=True)
class _Session:
    user_id: int
    trainer_id: int
    status: str
    changed: bool = False


@dataclass(slots=True)
class _Entry:
    """What later decisions need of an entry; new ones carry their whole row."""

    user_id: int
    trainer_id: int | None
    row: dict[str, Any] | None = None


@dataclass(slots=True)
class _Balance:
    total: int = 0
    used: int = 0
    total_change: int = 0
    used_change: int = 0

    def snapshot(self) -> events.Balance:
        return events.Balance(total=self.total, used=self.used, remaining=self.total - self.used)


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


@dataclass
class Ledger:
    session: AsyncSession
    outbox: Outbox
    #: The service's consumer, which reads the ledger topic back (see `restore`).
    own_consumer: IdempotentConsumer
    _sessions: dict[int, _Session] = field(default_factory=dict)
    _parked: dict[int, list[_Parked]] = field(default_factory=dict)
    _unparked: list[int] = field(default_factory=list)
    #: Workouts whose parked deduction was withdrawn (see `withdraw_parked`), of the sessions
    #: loaded; the new ones, to write, by workout.
    _withdrawn: set[uuid.UUID] = field(default_factory=set)
    _new_withdrawals: dict[uuid.UUID, int] = field(default_factory=dict)
    _entries: dict[uuid.UUID, _Entry] = field(default_factory=dict)
    _balances: dict[int, _Balance] = field(default_factory=dict)
    #: Ids of the rejections decided since loading.
    _rejected: set[str] = field(default_factory=set)
    _announcements: list[Announcement] = field(default_factory=list)

    # --- loading and writing --------------------------------------------------------------

    @classmethod
    async def load(
        cls, session: AsyncSession, outbox: Outbox, own_consumer: IdempotentConsumer, scope: Scope
    ) -> Ledger:
        ledger = cls(session, outbox, own_consumer)
        await ledger._load(scope)
        return ledger

    async def _load(self, scope: Scope) -> None:
        session_ids = sorted(scope.sessions)
        await self._lock_sessions(session_ids)
        keys = sorted({f"purchase:{p}" for p in scope.purchases} | set(scope.grant_keys))
        await self._lock_keys(_PURCHASE_LOCKS, keys)
        # Core rows rather than ORM objects throughout: a batch loads thousands of them.
        if session_ids:
            known = _SESSIONS.c
            for row in await self.session.execute(
                select(known.session_id, known.user_id, known.trainer_id, known.status).where(
                    known.session_id == any_of(session_ids, BIGINT)
                )
            ):
                self._sessions[row.session_id] = _Session(row.user_id, row.trainer_id, row.status)
        # Deductions are parked only for sessions not known yet (and settled when they are).
        unknown = [session_id for session_id in session_ids if session_id not in self._sessions]
        if unknown:
            pending = _PENDING.c
            for row in await self.session.execute(
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
                self._parked.setdefault(row.session_id, []).append(_Parked(request, row.id))
        if session_ids:
            withdrawn = _WITHDRAWN.c
            self._withdrawn.update(
                await self.session.scalars(
                    select(withdrawn.workout_id).where(
                        withdrawn.session_id == any_of(session_ids, BIGINT)
                    )
                )
            )
        wanted = set(scope.entries)
        wanted.update(purchase_grant_id(p) for p in scope.purchases)
        wanted.update(entry_id("grant", k) for k in scope.grant_keys)
        for session_id in session_ids:
            wanted.update((deduction_id(session_id), restoration_id(session_id)))
        if wanted:
            entries = _ENTRIES.c
            for entry_row in await self.session.execute(
                select(entries.id, entries.user_id, entries.trainer_id).where(
                    entries.id == any_of(sorted(wanted), UUID(as_uuid=True))
                )
            ):
                self._entries[entry_row.id] = _Entry(entry_row.user_id, entry_row.trainer_id)
        clients = set(scope.clients)
        clients.update(known.user_id for known in self._sessions.values())
        clients.update(entry.user_id for entry in self._entries.values())
        await self._lock_keys(_CLIENT_LOCKS, sorted(str(c) for c in clients))
        if clients:
            balances = _BALANCES.c
            for balance_row in await self.session.execute(
                select(balances.user_id, balances.total, balances.used).where(
                    balances.user_id == any_of(sorted(clients), BIGINT)
                )
            ):
                self._balances[balance_row.user_id] = _Balance(balance_row.total, balance_row.used)

    async def write(self) -> None:
        """Write everything decided since loading, one statement per table."""
        changed = [
            {"session_id": session_id, "user_id": s.user_id, "trainer_id": s.trainer_id,
             "status": s.status}
            for session_id, s in self._sessions.items()
            if s.changed
        ]  # fmt: skip
        if changed:
            await self.session.execute(_UPSERT_SESSIONS, columns_of(changed, _SESSION_COLUMNS))
        if self._unparked:
            await self.session.execute(
                delete(PendingDeduction).where(
                    PendingDeduction.id == any_of(self._unparked, BIGINT)
                )
            )
        parked = [
            {"session_id": p.request.session_id, "user_id": p.request.user_id,
             "trainer_id": p.request.trainer_id, "workout_id": p.request.workout_id,
             "cause": p.request.cause, "caused_by": p.request.caused_by}
            for waiting in self._parked.values()
            for p in waiting
            if p.id is None
        ]  # fmt: skip
        if parked:
            await self.session.execute(_INSERT_PARKED, columns_of(parked, _PARKED_COLUMNS))
        if self._new_withdrawals:
            await self.session.execute(
                _INSERT_WITHDRAWN,
                {
                    "workout_id": list(self._new_withdrawals),
                    "session_id": list(self._new_withdrawals.values()),
                },
            )
            self._new_withdrawals.clear()
        new_entries = [entry.row for entry in self._entries.values() if entry.row is not None]
        if new_entries:
            await self.session.execute(_INSERT_ENTRIES, columns_of(new_entries, _ENTRY_COLUMNS))
        changes = [
            {"user_id": user_id, "total": b.total_change, "used": b.used_change}
            for user_id, b in self._balances.items()
            if b.total_change or b.used_change
        ]
        if changes:
            await self.session.execute(_ADD_TO_BALANCES, columns_of(changes, _BALANCE_COLUMNS))
        if self._rejected:
            # Rejections announced before (a rebuild reads them back from the ledger topic
            # first) are not announced again: looked for only now, as they are rare.
            announced = set(
                await self.session.scalars(
                    select(processed_events.c.event_id).where(
                        processed_events.c.consumer == self.own_consumer.name,
                        processed_events.c.event_id == any_of(sorted(self._rejected), TEXT),
                    )
                )
            )
            self._announcements = [a for a in self._announcements if a.event.id not in announced]
        await self.outbox.insert(self.session, self._announcements)
        # Read back from the ledger topic, they are then cheap duplicates (a rebuild's empty
        # database has no such marks, and restores from them).
        await self.own_consumer.record_own_events(
            self.session, [announcement.event for announcement in self._announcements]
        )
        self._announcements.clear()

    # --- credits in -----------------------------------------------------------------------

    def grant_credits(
        self,
        *,
        user_id: int,
        amount: int,
        caused_by: str,
        purchase_id: str | None = None,
        reason: str | None = None,
        grant_key: str | None = None,
    ) -> bool:
        """Add `amount` credits, once per purchase (or per `grant_key` for staff grants)."""
        if purchase_id is not None:
            id = purchase_grant_id(purchase_id)
        elif grant_key is not None:
            id = entry_id("grant", grant_key)
        else:
            raise ValueError("a grant names its purchase or carries a key of its own")
        if not self._append(
            id, user_id=user_id, kind=EntryKind.GRANT, amount=amount, purchase_id=purchase_id,
            reason=reason, caused_by=caused_by,
        ):  # fmt: skip
            return False
        self._announce(
            events.CreditsGranted(
                user_id=user_id,
                amount=amount,
                purchase_id=purchase_id,
                reason=reason,
                balance=self._balance(user_id).snapshot(),
                caused_by=None if caused_by == STAFF_GRANT else caused_by,
            ),
            event_id=id,
        )
        return True

    def restore(self, event: Event[LedgerEvent]) -> None:
        """Record an entry from its announcement on `credits.ledger`, as announced.

        The service reads its ledger topic before its inputs (see `servicekit.history`), so
        a rebuild records every deduction with the cause, workout and balance it was
        announced with, whichever of its causes the inputs happen to give first, and
        announces nothing twice. Live, announcements are recorded as applied when they are
        made (see `write`), so they come back as duplicates and never reach this.
        A rejection is no entry: remembering its id (the consumer does) is enough, but for a
        withdrawal's, whose workout must never be charged afterwards."""
        announced = event.payload
        id = uuid.UUID(event.id)
        caused_by = getattr(announced, "caused_by", None) or _cause_of_unattributed(event)
        if isinstance(announced, events.CreditsGranted):
            self._append(
                id, user_id=announced.user_id, kind=EntryKind.GRANT, amount=announced.amount,
                purchase_id=announced.purchase_id, reason=announced.reason, caused_by=caused_by,
            )  # fmt: skip
        elif isinstance(announced, events.SessionCreditDeducted):
            self._append(
                id, user_id=announced.user_id, kind=EntryKind.DEDUCTION, amount=-1,
                session_id=announced.session_id, trainer_id=announced.trainer_id,
                workout_id=announced.workout_id, cause=announced.cause, caused_by=caused_by,
            )  # fmt: skip
        elif isinstance(announced, events.SessionCreditRestored):
            # Keyed by client like the deduction before it, so that one was read first.
            deduction = self._entries.get(deduction_id(announced.session_id))
            self._append(
                id, user_id=announced.user_id, kind=EntryKind.RESTORATION, amount=1,
                session_id=announced.session_id,
                trainer_id=deduction.trainer_id if deduction is not None else None,
                reason=announced.reason, caused_by=caused_by,
            )  # fmt: skip
        elif (
            isinstance(announced, events.CreditDeductionRejected)
            and announced.workout_id is not None
            and id == withdrawal_id(announced.workout_id)
        ):
            self._remember_withdrawal(announced.session_id, announced.workout_id)

    # --- sessions -------------------------------------------------------------------------

    def session_seen(
        self,
        *,
        session_id: int,
        user_id: int,
        trainer_id: int,
        status: SessionStatus | None,
        caused_by: str,
    ) -> None:
        """Learn of a session (booked, or moved along by an event that names its client and
        trainer); `status` None keeps the status already known. Then settle parked
        deductions, and give back the credit of a session that turns out cancelled."""
        known = self._sessions.get(session_id)
        if known is None:
            known = _Session(user_id, trainer_id, status or SessionStatus.SCHEDULED, changed=True)
            self._sessions[session_id] = known
        elif status is not None:
            known.status = status
            known.changed = True
        self._settle_parked(session_id, known)
        if status in CANCELLED_STATUSES:
            self._restore(session_id, reason=f"session {status}", caused_by=caused_by)

    def session_mismatch(self, *, session_id: int, user_id: int, trainer_id: int) -> str | None:
        """Why an event naming this client and trainer does not fit the known session."""
        known = self._sessions.get(session_id)
        if known is None or (known.user_id, known.trainer_id) == (user_id, trainer_id):
            return None
        return (
            f"session {session_id} is booked for client {known.user_id} with trainer "
            f"{known.trainer_id}, not client {user_id} with trainer {trainer_id}"
        )

    # --- credits out ----------------------------------------------------------------------

    def deduct_session_credit(self, request: DeductionRequest) -> None:
        """Deduct one credit for a delivered session, exactly once per session. A request for
        a session not booked yet waits for the booking; one that does not fit it is
        rejected with the reason. A workout whose parked deduction was withdrawn never
        deducts."""
        if request.workout_id in self._withdrawn:
            return
        known = self._sessions.get(request.session_id)
        if known is None:
            self._parked.setdefault(request.session_id, []).append(_Parked(request))
            return
        self._decide(request, known)

    def withdraw_parked(self, *, session_id: int, workout_id: uuid.UUID, user_id: int) -> None:
        """A workout called off while its deduction waits for the session's booking: the
        deduction is dropped, never charged, and announced as rejected with the reason. The
        workout is remembered as withdrawn, so that nothing charges it later, in whatever
        order a rebuild reads the inputs. A workout with no parked deduction changes
        nothing: calling off a workout whose credit was deducted gives nothing back."""
        waiting = self._parked.get(session_id, [])
        withdrawn = [p for p in waiting if p.request.workout_id == workout_id]
        if not withdrawn:
            return
        self._parked[session_id] = [p for p in waiting if p.request.workout_id != workout_id]
        self._unparked.extend(p.id for p in withdrawn if p.id is not None)
        if deduction_id(session_id) in self._entries:
            # A rebuild that read back first the deduction made live before the workout was
            # called off: it stands, as it did live.
            return
        self._remember_withdrawal(session_id, workout_id)
        id = withdrawal_id(workout_id)
        self._rejected.add(str(id))  # left out when written if announced before
        self._announce(
            events.CreditDeductionRejected(
                user_id=user_id,
                session_id=session_id,
                workout_id=workout_id,
                reason=f"workout {workout_id} was cancelled before session {session_id} was booked",
            ),
            event_id=id,
        )

    def _remember_withdrawal(self, session_id: int, workout_id: uuid.UUID) -> None:
        if workout_id not in self._withdrawn:
            self._withdrawn.add(workout_id)
            self._new_withdrawals[workout_id] = session_id

    def _decide(self, request: DeductionRequest, known: _Session) -> None:
        mismatch = self.session_mismatch(
            session_id=request.session_id, user_id=request.user_id, trainer_id=request.trainer_id
        )
        if mismatch:
            self._reject(request, mismatch)
        elif known.status in CANCELLED_STATUSES:
            self._reject(request, f"session {request.session_id} is {known.status}")
        else:
            self._deduct(request)

    def _deduct(self, request: DeductionRequest) -> None:
        id = deduction_id(request.session_id)
        if not self._append(
            id, user_id=request.user_id, kind=EntryKind.DEDUCTION, amount=-1,
            session_id=request.session_id, trainer_id=request.trainer_id,
            workout_id=request.workout_id, cause=request.cause, caused_by=request.caused_by,
        ):  # fmt: skip
            return  # this session's credit was deducted before: by design, nothing to do
        self._announce(
            events.SessionCreditDeducted(
                user_id=request.user_id,
                session_id=request.session_id,
                trainer_id=request.trainer_id,
                workout_id=request.workout_id,
                cause=request.cause,
                balance=self._balance(request.user_id).snapshot(),
                caused_by=request.caused_by,
            ),
            event_id=id,
        )

    def _restore(self, session_id: int, *, reason: str, caused_by: str) -> None:
        deduction = self._entries.get(deduction_id(session_id))
        if deduction is None:
            return
        id = restoration_id(session_id)
        if not self._append(
            id, user_id=deduction.user_id, kind=EntryKind.RESTORATION, amount=1,
            session_id=session_id, trainer_id=deduction.trainer_id, reason=reason,
            caused_by=caused_by,
        ):  # fmt: skip
            return
        self._announce(
            events.SessionCreditRestored(
                user_id=deduction.user_id,
                session_id=session_id,
                reason=reason,
                balance=self._balance(deduction.user_id).snapshot(),
                caused_by=caused_by,
            ),
            event_id=id,
        )

    def _reject(self, request: DeductionRequest, reason: str) -> None:
        id = str(rejection_id(request.caused_by))
        if id in self._rejected:
            return
        self._rejected.add(id)  # and left out when written if announced before (see `write`)
        self._announce(
            events.CreditDeductionRejected(
                user_id=request.user_id,
                session_id=request.session_id,
                workout_id=request.workout_id,
                reason=reason,
            ),
            event_id=id,
        )

    def _settle_parked(self, session_id: int, known: _Session) -> None:
        for parked in self._parked.pop(session_id, []):
            if parked.id is not None:
                self._unparked.append(parked.id)
            self._decide(parked.request, known)

    # --- balance --------------------------------------------------------------------------

    def balance_of(self, user_id: int) -> events.Balance:
        return self._balance(user_id).snapshot()

    def _balance(self, user_id: int) -> _Balance:
        return self._balances.setdefault(user_id, _Balance())

    # --- plumbing -------------------------------------------------------------------------

    def _append(self, id: uuid.UUID, **row: Any) -> bool:
        """Add a ledger entry unless its business key is already there; whether it is new."""
        if id in self._entries:
            return False
        full_row = {**dict.fromkeys(_OPTIONAL_ENTRY_COLUMNS), **row, "id": id}
        self._entries[id] = _Entry(row["user_id"], row.get("trainer_id"), full_row)
        balance = self._balance(row["user_id"])
        if row["kind"] == EntryKind.GRANT:
            balance.total += row["amount"]
            balance.total_change += row["amount"]
        else:  # a deduction (-1) uses a credit, a restoration (+1) gives it back
            balance.used -= row["amount"]
            balance.used_change -= row["amount"]
        return True

    def _announce(self, payload: events.EventPayload, *, event_id: uuid.UUID | str) -> None:
        # Prepared now, in the trace context of the event that caused it.
        self._announcements.append(self.outbox.prepare(payload, event_id=str(event_id)))

    async def _lock_sessions(self, session_ids: Sequence[int]) -> None:
        if session_ids:
            await self.session.execute(
                text(
                    "select pg_advisory_xact_lock(id) from unnest(:ids) as id order by id"
                ).bindparams(bindparam("ids", type_=ARRAY(BIGINT))),
                {"ids": list(session_ids)},
            )

    async def _lock_keys(self, kind: int, keys: Sequence[str]) -> None:
        if keys:
            await self.session.execute(
                text(
                    "select pg_advisory_xact_lock(:kind, hashtext(key))"
                    " from unnest(:keys) as key order by key"
                ).bindparams(bindparam("keys", type_=ARRAY(TEXT))),
                {"kind": kind, "keys": list(keys)},
            )


@asynccontextmanager
async def ledger_for(
    session: AsyncSession,
    outbox: Outbox,
    own_consumer: IdempotentConsumer,
    scope: Scope,
) -> AsyncIterator[Ledger]:
    """A ledger loaded for `scope`, written when the block ends without an error."""
    ledger = await Ledger.load(session, outbox, own_consumer, scope)
    yield ledger
    await ledger.write()


async def balance_of(session: AsyncSession, user_id: int) -> events.Balance:
    row = await session.get(Balance, user_id)
    if row is None:
        return events.Balance(total=0, used=0, remaining=0)
    return events.Balance(total=row.total, used=row.used, remaining=row.remaining)


class UnknownCursor(LookupError):
    """A page asked for after an entry that is not in this client's ledger."""


@dataclass(frozen=True, slots=True)
class LedgerPage:
    #: Entries with the balance's `remaining` right after each, oldest first.
    entries: list[tuple[LedgerEntry, int]]
    #: Whether entries come after the last of this page.
    more: bool


async def ledger_page(
    session: AsyncSession, user_id: int, *, after: uuid.UUID | None, limit: int
) -> LedgerPage:
    """Up to `limit` entries of a client's ledger after the entry `after` (from the first
    when None), oldest first. Each page costs its own rows, not the history before it: the
    balance before the page is one sum over the index."""
    entries = LedgerEntry.__table__.c
    mine = entries.user_id == user_id
    start, before = 0, 0
    if after is not None:
        found = await session.scalar(select(entries.seq).where(mine, entries.id == after))
        if found is None:
            raise UnknownCursor(f"no entry {after} in the ledger of client {user_id}")
        start = found
        before = (
            await session.scalar(
                select(func.coalesce(func.sum(entries.amount), 0)).where(mine, entries.seq <= start)
            )
            or 0
        )
    page = (
        select(LedgerEntry)
        .where(mine, entries.seq > start)
        .order_by(entries.seq)
        .limit(limit + 1)
        .subquery()
    )
    entry = aliased(LedgerEntry, page)
    remaining_after = before + func.sum(page.c.amount).over(order_by=page.c.seq)
    rows = (await session.execute(select(entry, remaining_after).order_by(page.c.seq))).all()
    return LedgerPage([(row[0], int(row[1])) for row in rows[:limit]], more=len(rows) > limit)
