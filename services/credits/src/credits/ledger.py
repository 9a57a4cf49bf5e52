"""The credit ledger's use cases, in the business's words.

Every function runs inside the caller's transaction and writes the events it causes to the
outbox in that same transaction. Work on one session is serialised by a transaction-scoped
advisory lock on its id: a workout and the session's booking arriving on two partitions (or
two replicas) at once then see each other, so a parked deduction is never stranded.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import delete, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from contracts import events
from contracts.envelope import Event
from credits.models import (
    Balance,
    EntryKind,
    KnownSession,
    LedgerEntry,
    PendingDeduction,
    SessionStatus,
)
from servicekit.consumer import IdempotentConsumer
from servicekit.outbox import Outbox

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


def _cause_of_unattributed(event: Event[LedgerEvent]) -> str:
    """An announcement without `causedBy`: a staff grant's, or one made before the field."""
    if isinstance(event.payload, events.CreditsGranted) and event.payload.purchase_id is None:
        return STAFF_GRANT
    return event.id


def entry_id(*business_key: object) -> uuid.UUID:
    return uuid.uuid5(LEDGER_NAMESPACE, ":".join(str(part) for part in business_key))


@dataclass(frozen=True, slots=True)
class DeductionRequest:
    """One reason to deduct a session's credit: a trainer-led workout or a completed session."""

    session_id: int
    user_id: int
    trainer_id: int
    workout_id: uuid.UUID | None
    cause: Cause
    caused_by: str


class Ledger:
    def __init__(
        self, session: AsyncSession, outbox: Outbox, own_consumer: IdempotentConsumer
    ) -> None:
        self.session = session
        self.outbox = outbox
        #: The service's consumer, which reads the ledger topic back (see `restore`).
        self.own_consumer = own_consumer

    # --- credits in -----------------------------------------------------------------------

    async def grant_credits(
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
            key: tuple[str, ...] = ("grant", "purchase", purchase_id)
        elif grant_key is not None:
            key = ("grant", grant_key)
        else:
            raise ValueError("a grant names its purchase or carries a key of its own")
        entry = await self._append(
            id=entry_id(*key),
            user_id=user_id,
            kind=EntryKind.GRANT,
            amount=amount,
            purchase_id=purchase_id,
            reason=reason,
            caused_by=caused_by,
        )
        if entry is None:
            return False
        balance = await self._change_balance(user_id, total=amount)
        await self._announce(
            events.CreditsGranted(
                user_id=user_id,
                amount=amount,
                purchase_id=purchase_id,
                reason=reason,
                balance=balance,
                caused_by=None if caused_by == STAFF_GRANT else caused_by,
            ),
            event_id=str(entry),
        )
        return True

    async def restore(self, event: Event[LedgerEvent]) -> None:
        """Record an entry from its announcement on `credits.ledger`, as announced.

        The service reads its ledger topic before its inputs (see `servicekit.history`), so
        a rebuild records every deduction with the cause, workout and balance it was
        announced with, whichever of its causes the inputs happen to give first, and
        announces nothing twice. Live, the entry is already there and this changes nothing.
        A rejection is no entry: remembering its id (the consumer does) is enough."""
        announced = event.payload
        entry: uuid.UUID | None = None
        if isinstance(announced, events.CreditsGranted):
            entry = await self._append(
                id=uuid.UUID(event.id),
                user_id=announced.user_id,
                kind=EntryKind.GRANT,
                amount=announced.amount,
                purchase_id=announced.purchase_id,
                reason=announced.reason,
                caused_by=announced.caused_by or _cause_of_unattributed(event),
            )
            if entry is not None:
                await self._change_balance(announced.user_id, total=announced.amount)
        elif isinstance(announced, events.SessionCreditDeducted):
            entry = await self._append(
                id=uuid.UUID(event.id),
                user_id=announced.user_id,
                kind=EntryKind.DEDUCTION,
                amount=-1,
                session_id=announced.session_id,
                trainer_id=announced.trainer_id,
                workout_id=announced.workout_id,
                cause=announced.cause,
                caused_by=announced.caused_by or _cause_of_unattributed(event),
            )
            if entry is not None:
                await self._change_balance(announced.user_id, used=1)
        elif isinstance(announced, events.SessionCreditRestored):
            # Keyed by client like the deduction before it, so that one was read first.
            deduction = await self.session.get(
                LedgerEntry, entry_id("deduction", announced.session_id)
            )
            entry = await self._append(
                id=uuid.UUID(event.id),
                user_id=announced.user_id,
                kind=EntryKind.RESTORATION,
                amount=1,
                session_id=announced.session_id,
                trainer_id=deduction.trainer_id if deduction is not None else None,
                reason=announced.reason,
                caused_by=announced.caused_by or _cause_of_unattributed(event),
            )
            if entry is not None:
                await self._change_balance(announced.user_id, used=-1)

    # --- sessions -------------------------------------------------------------------------

    async def session_seen(
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
        await self._lock(session_id)
        known = await self.session.get(KnownSession, session_id, with_for_update=True)
        if known is None:
            self.session.add(
                KnownSession(
                    session_id=session_id,
                    user_id=user_id,
                    trainer_id=trainer_id,
                    status=status or SessionStatus.SCHEDULED,
                )
            )
            await self.session.flush()
        elif status is not None:
            known.status = status
        await self._settle_parked(session_id)
        if status in CANCELLED_STATUSES:
            await self._restore(session_id, reason=f"session {status}", caused_by=caused_by)

    async def session_mismatch(
        self, *, session_id: int, user_id: int, trainer_id: int
    ) -> str | None:
        """Why an event naming this client and trainer does not fit the known session."""
        known = await self.session.get(KnownSession, session_id)
        if known is None or (known.user_id, known.trainer_id) == (user_id, trainer_id):
            return None
        return (
            f"session {session_id} is booked for client {known.user_id} with trainer "
            f"{known.trainer_id}, not client {user_id} with trainer {trainer_id}"
        )

    # --- credits out ----------------------------------------------------------------------

    async def deduct_session_credit(self, request: DeductionRequest) -> None:
        """Deduct one credit for a delivered session, exactly once per session. A request for
        a session not booked yet waits for the booking; one that does not fit it is
        rejected with the reason."""
        await self._lock(request.session_id)
        known = await self.session.get(KnownSession, request.session_id)
        if known is None:
            self.session.add(
                PendingDeduction(
                    session_id=request.session_id,
                    user_id=request.user_id,
                    trainer_id=request.trainer_id,
                    workout_id=request.workout_id,
                    cause=request.cause,
                    caused_by=request.caused_by,
                )
            )
            return
        await self._decide(request, known)

    async def _decide(self, request: DeductionRequest, known: KnownSession) -> None:
        mismatch = await self.session_mismatch(
            session_id=request.session_id, user_id=request.user_id, trainer_id=request.trainer_id
        )
        if mismatch:
            await self._reject(request, mismatch)
        elif known.status in CANCELLED_STATUSES:
            await self._reject(request, f"session {request.session_id} is {known.status}")
        else:
            await self._deduct(request)

    async def _deduct(self, request: DeductionRequest) -> None:
        entry = await self._append(
            id=entry_id("deduction", request.session_id),
            user_id=request.user_id,
            kind=EntryKind.DEDUCTION,
            amount=-1,
            session_id=request.session_id,
            trainer_id=request.trainer_id,
            workout_id=request.workout_id,
            cause=request.cause,
            caused_by=request.caused_by,
        )
        if entry is None:
            return  # this session's credit was deducted before: by design, nothing to do
        balance = await self._change_balance(request.user_id, used=1)
        await self._announce(
            events.SessionCreditDeducted(
                user_id=request.user_id,
                session_id=request.session_id,
                trainer_id=request.trainer_id,
                workout_id=request.workout_id,
                cause=request.cause,
                balance=balance,
                caused_by=request.caused_by,
            ),
            event_id=str(entry),
        )

    async def _restore(self, session_id: int, *, reason: str, caused_by: str) -> None:
        deduction = await self.session.get(LedgerEntry, entry_id("deduction", session_id))
        if deduction is None:
            return
        entry = await self._append(
            id=entry_id("restoration", session_id),
            user_id=deduction.user_id,
            kind=EntryKind.RESTORATION,
            amount=1,
            session_id=session_id,
            trainer_id=deduction.trainer_id,
            reason=reason,
            caused_by=caused_by,
        )
        if entry is None:
            return
        balance = await self._change_balance(deduction.user_id, used=-1)
        await self._announce(
            events.SessionCreditRestored(
                user_id=deduction.user_id,
                session_id=session_id,
                reason=reason,
                balance=balance,
                caused_by=caused_by,
            ),
            event_id=str(entry),
        )

    async def _reject(self, request: DeductionRequest, reason: str) -> None:
        rejection = str(entry_id("rejection", request.caused_by))
        if await self.own_consumer.has_applied(self.session, rejection):
            return  # announced before this database was rebuilt
        await self._announce(
            events.CreditDeductionRejected(
                user_id=request.user_id,
                session_id=request.session_id,
                workout_id=request.workout_id,
                reason=reason,
            ),
            event_id=rejection,
        )

    async def _settle_parked(self, session_id: int) -> None:
        parked = (
            await self.session.scalars(
                delete(PendingDeduction)
                .where(PendingDeduction.session_id == session_id)
                .returning(PendingDeduction)
            )
        ).all()
        known = await self.session.get(KnownSession, session_id)
        assert known is not None, "settled only once the session is known"
        for pending in sorted(parked, key=lambda p: p.id):
            await self._decide(
                DeductionRequest(
                    session_id=pending.session_id,
                    user_id=pending.user_id,
                    trainer_id=pending.trainer_id,
                    workout_id=pending.workout_id,
                    cause=pending.cause,  # type: ignore[arg-type]
                    caused_by=pending.caused_by,
                ),
                known,
            )

    # --- balance --------------------------------------------------------------------------

    async def balance_of(self, user_id: int) -> events.Balance:
        row = await self.session.get(Balance, user_id)
        if row is None:
            return events.Balance(total=0, used=0, remaining=0)
        return events.Balance(total=row.total, used=row.used, remaining=row.remaining)

    async def _change_balance(
        self, user_id: int, *, total: int = 0, used: int = 0
    ) -> events.Balance:
        row = (
            await self.session.execute(
                insert(Balance)
                .values(user_id=user_id, total=total, used=used)
                .on_conflict_do_update(
                    index_elements=[Balance.user_id],
                    set_={"total": Balance.total + total, "used": Balance.used + used},
                )
                .returning(Balance.total, Balance.used, Balance.remaining)
            )
        ).one()
        return events.Balance(total=row.total, used=row.used, remaining=row.remaining)

    # --- plumbing -------------------------------------------------------------------------

    async def _append(self, **values: object) -> uuid.UUID | None:
        """Insert a ledger entry unless its business key is already there; its id if new."""
        inserted = await self.session.execute(
            insert(LedgerEntry).values(**values).on_conflict_do_nothing().returning(LedgerEntry.id)
        )
        return inserted.scalar_one_or_none()

    async def _announce(self, payload: events.EventPayload, *, event_id: str) -> None:
        await self.outbox.add(self.session, payload, event_id=event_id)

    async def _lock(self, session_id: int) -> None:
        await self.session.execute(select(func.pg_advisory_xact_lock(session_id)))
