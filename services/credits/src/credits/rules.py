"""The credit ledger's rules, in the business's words: every one of them is in this file.

- A purchase grants its credits once, whoever sends it and however often; so does a staff
  grant with one `Idempotency-Key`.
- A delivered trainer-led session uses one credit, exactly once per session, whichever of its
  causes comes first: its trainer-led workout logged in progress or completed, or the
  session completed. A solo workout never uses one.
- A deduction for a session not booked yet is parked, and settled when the booking arrives.
- A deduction for a session booked for another client or trainer, or cancelled or missed,
  is rejected with the reason; so is any event about a session that names someone else.
- A workout called off while its deduction is parked withdraws it: it is never charged.
- A session cancelled or missed after its credit was deducted gives the credit back, once.
- The balance may go negative: a delivered session is charged whatever is left.

`Ledger` holds what one batch of events (or one request) touches, loaded by the store
(`credits.store`), and decides in memory: no database, no clock, no I/O.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from contracts import events
from contracts.envelope import Event
from contracts.events import DeductionCause, SessionType, WorkoutStatus
from contracts.sessions import (
    DELIVERING_WORKOUT_STATUSES,
    UNDELIVERED_STATUSES,
    SessionStatus,
    booked_for_someone_else,
)
from servicekit.domain import Announced, RuleBroken

#: Entry ids are uuid5 of the business key in this namespace, so the same business action
#: always gets the same id (and the same event id when it is announced).
LEDGER_NAMESPACE = uuid.UUID("6b1c8f0e-2f4a-5b7d-9c3e-1a2b3c4d5e6f")

#: What a staff grant's entry names as its cause: the request itself leaves no event behind
#: but the grant's own announcement (the `Idempotency-Key` lives on in the entry's id).
STAFF_GRANT = "staff-grant"

#: What the credits service reads back from its own topic (see `Ledger.restore`).
LedgerEvent = (
    events.CreditsGranted
    | events.SessionCreditDeducted
    | events.SessionCreditRestored
    | events.CreditDeductionRejected
)

#: Columns an entry may leave out (NULL); every new entry's row names them all.
OPTIONAL_ENTRY_COLUMNS = (
    "purchase_id",
    "session_id",
    "trainer_id",
    "workout_id",
    "cause",
    "reason",
)


class EntryKind(StrEnum):
    GRANT = "grant"
    DEDUCTION = "deduction"
    RESTORATION = "restoration"


class BookedForSomeoneElse(RuleBroken):
    """An event naming a client and trainer other than those its session is booked for."""


def entry_id(*business_key: object) -> uuid.UUID:
    return uuid.uuid5(LEDGER_NAMESPACE, ":".join(str(part) for part in business_key))


def deduction_id(session_id: int) -> uuid.UUID:
    return entry_id("deduction", session_id)


def restoration_id(session_id: int) -> uuid.UUID:
    return entry_id("restoration", session_id)


def purchase_grant_id(purchase_id: str) -> uuid.UUID:
    return entry_id("grant", "purchase", purchase_id)


def keyed_grant_id(grant_key: str) -> uuid.UUID:
    return entry_id("grant", grant_key)


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
    cause: DeductionCause
    caused_by: str


@dataclass(frozen=True, slots=True)
class Parked:
    """A deduction waiting for its session's booking; `id` None until it is written."""

    request: DeductionRequest
    id: int | None = None


@dataclass(slots=True)
class KnownSession:
    user_id: int
    trainer_id: int
    status: SessionStatus
    changed: bool = False


@dataclass(slots=True)
class Entry:
    """What later decisions need of an entry; new ones carry their whole row."""

    user_id: int
    trainer_id: int | None
    row: dict[str, Any] | None = None


@dataclass(slots=True)
class ClientBalance:
    total: int = 0
    used: int = 0
    total_change: int = 0
    used_change: int = 0

    def snapshot(self) -> events.Balance:
        return events.Balance(total=self.total, used=self.used, remaining=self.total - self.used)


@dataclass
class Ledger:
    """The part of the ledger a batch or a request touches, and what was decided on it."""

    sessions: dict[int, KnownSession] = field(default_factory=dict)
    parked: dict[int, list[Parked]] = field(default_factory=dict)
    #: Workouts whose parked deduction was withdrawn (see `withdraw_parked`), of the sessions
    #: loaded.
    withdrawn: set[uuid.UUID] = field(default_factory=set)
    entries: dict[uuid.UUID, Entry] = field(default_factory=dict)
    balances: dict[int, ClientBalance] = field(default_factory=dict)
    # What was decided since loading, for the store to write.
    #: Ids of parked rows settled or withdrawn.
    unparked: list[int] = field(default_factory=list)
    #: The withdrawals decided since loading: session by workout.
    new_withdrawals: dict[uuid.UUID, int] = field(default_factory=dict)
    #: Ids of the rejections decided since loading (the store leaves out those announced
    #: before: a rebuild reads them back from the ledger topic first).
    rejected: set[str] = field(default_factory=set)
    announced: list[Announced] = field(default_factory=list)

    # --- credits in -----------------------------------------------------------------------

    def grant_purchase(self, purchase: events.PackagePurchased, *, caused_by: str) -> None:
        """A package's credits, once per purchase."""
        self._grant(
            purchase_grant_id(purchase.purchase_id),
            user_id=purchase.user_id,
            amount=purchase.sessions,
            purchase_id=purchase.purchase_id,
            reason=purchase.package_name,
            caused_by=caused_by,
        )

    def grant_by_staff(self, *, user_id: int, amount: int, reason: str, grant_key: str) -> None:
        """Credits staff add by hand, once per `grant_key` (their request's key)."""
        self._grant(
            keyed_grant_id(grant_key),
            user_id=user_id,
            amount=amount,
            purchase_id=None,
            reason=reason,
            caused_by=STAFF_GRANT,
        )

    def _grant(
        self,
        id: uuid.UUID,
        *,
        user_id: int,
        amount: int,
        purchase_id: str | None,
        reason: str | None,
        caused_by: str,
    ) -> None:
        entry = {"purchase_id": purchase_id, "reason": reason, "caused_by": caused_by}
        if not self._append(id, user_id=user_id, kind=EntryKind.GRANT, amount=amount, **entry):
            return
        self._announce(
            events.CreditsGranted(
                user_id=user_id,
                amount=amount,
                purchase_id=purchase_id,
                reason=reason,
                balance=self.balance_of(user_id),
                caused_by=None if caused_by == STAFF_GRANT else caused_by,
            ),
            event_id=id,
        )

    def restore(self, event: Event[LedgerEvent]) -> None:
        """Record an entry from its announcement on `credits.ledger`, as announced.

        The service reads its ledger topic before its inputs (see `servicekit.history`), so
        a rebuild records every deduction with the cause, workout and balance it was
        announced with, whichever of its causes the inputs happen to give first, and
        announces nothing twice. Live, announcements are recorded as applied when they are
        made (see `credits.store`), so they come back as duplicates and never reach this.
        A rejection is no entry: remembering its id (the consumer does) is enough, but for a
        withdrawal's, whose workout must never be charged afterwards."""
        announced = event.payload
        id = uuid.UUID(event.id)
        caused_by = getattr(announced, "caused_by", None) or _cause_of_unattributed(event)
        if isinstance(announced, events.CreditsGranted):
            self._append(
                id,
                user_id=announced.user_id,
                kind=EntryKind.GRANT,
                amount=announced.amount,
                purchase_id=announced.purchase_id,
                reason=announced.reason,
                caused_by=caused_by,
            )
        elif isinstance(announced, events.SessionCreditDeducted):
            self._append_deduction(
                id,
                DeductionRequest(
                    session_id=announced.session_id,
                    user_id=announced.user_id,
                    trainer_id=announced.trainer_id,
                    workout_id=announced.workout_id,
                    cause=announced.cause,
                    caused_by=caused_by,
                ),
            )
        elif isinstance(announced, events.SessionCreditRestored):
            # Keyed by client like the deduction before it, so that one was read first.
            deduction = self.entries.get(deduction_id(announced.session_id))
            self._append(
                id,
                user_id=announced.user_id,
                kind=EntryKind.RESTORATION,
                amount=1,
                session_id=announced.session_id,
                trainer_id=deduction.trainer_id if deduction is not None else None,
                reason=announced.reason,
                caused_by=caused_by,
            )
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
        trainer); `status` None keeps the status already known. An event naming someone
        else is refused. Then settle parked deductions, and give back the credit of a
        session that turns out cancelled or missed."""
        known = self.sessions.get(session_id)
        if known is not None:
            mismatch = self._mismatch(session_id, user_id=user_id, trainer_id=trainer_id)
            if mismatch:
                raise BookedForSomeoneElse(mismatch)
        if known is None:
            known = KnownSession(
                user_id, trainer_id, status or SessionStatus.SCHEDULED, changed=True
            )
            self.sessions[session_id] = known
        elif status is not None:
            known.status = status
            known.changed = True
        self._settle_parked(session_id, known)
        if status in UNDELIVERED_STATUSES:
            self._restore(session_id, reason=f"session {status}", caused_by=caused_by)

    def _mismatch(self, session_id: int, *, user_id: int, trainer_id: int) -> str | None:
        known = self.sessions.get(session_id)
        if known is None:
            return None
        booked = (known.user_id, known.trainer_id)
        return booked_for_someone_else(session_id, booked=booked, named=(user_id, trainer_id))

    # --- credits out ----------------------------------------------------------------------

    def workout_reported(
        self, workout: events.WorkoutLogged | events.WorkoutStatusChanged, *, caused_by: str
    ) -> None:
        """A trainer-led workout that is being or has been delivered uses its session's
        credit; one called off withdraws its parked deduction. Solo workouts never count."""
        if workout.session_type is not SessionType.TRAINER_LED:
            return
        # The contract guarantees both for trainer-led workouts; this only narrows the types.
        assert workout.session_id is not None
        assert workout.trainer_id is not None
        if workout.status is WorkoutStatus.CANCELLED and isinstance(
            workout, events.WorkoutStatusChanged
        ):
            self.withdraw_parked(
                session_id=workout.session_id,
                workout_id=workout.workout_id,
                user_id=workout.user_id,
            )
        elif workout.status in DELIVERING_WORKOUT_STATUSES:
            self.deduct(
                DeductionRequest(
                    session_id=workout.session_id,
                    user_id=workout.user_id,
                    trainer_id=workout.trainer_id,
                    workout_id=workout.workout_id,
                    cause=events.WORKOUT_LOGGED,
                    caused_by=caused_by,
                )
            )

    def deduct(self, request: DeductionRequest) -> None:
        """Deduct one credit for a delivered session, exactly once per session. A request for
        a session not booked yet waits for the booking (parked); one that does not fit it
        is rejected with the reason. A workout whose parked deduction was withdrawn never
        deducts."""
        if request.workout_id in self.withdrawn:
            return
        known = self.sessions.get(request.session_id)
        if known is None:
            self.parked.setdefault(request.session_id, []).append(Parked(request))
            return
        self._decide(request, known)

    def withdraw_parked(self, *, session_id: int, workout_id: uuid.UUID, user_id: int) -> None:
        """A workout called off while its deduction waits for the session's booking: the
        deduction is dropped, never charged, and announced as rejected with the reason. The
        workout is remembered as withdrawn, so that nothing charges it later, in whatever
        order a rebuild reads the inputs. A workout with no parked deduction changes
        nothing: calling off a workout whose credit was deducted gives nothing back."""
        waiting = self.parked.get(session_id, [])
        withdrawn = [p for p in waiting if p.request.workout_id == workout_id]
        if not withdrawn:
            return
        self.parked[session_id] = [p for p in waiting if p.request.workout_id != workout_id]
        self.unparked.extend(p.id for p in withdrawn if p.id is not None)
        if deduction_id(session_id) in self.entries:
            # A rebuild that read back first the deduction made live before the workout was
            # called off: it stands, as it did live.
            return
        self._remember_withdrawal(session_id, workout_id)
        id = withdrawal_id(workout_id)
        self.rejected.add(str(id))
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
        if workout_id not in self.withdrawn:
            self.withdrawn.add(workout_id)
            self.new_withdrawals[workout_id] = session_id

    def _decide(self, request: DeductionRequest, known: KnownSession) -> None:
        mismatch = self._mismatch(
            request.session_id, user_id=request.user_id, trainer_id=request.trainer_id
        )
        if mismatch:
            self._reject(request, mismatch)
        elif known.status in UNDELIVERED_STATUSES:
            self._reject(request, f"session {request.session_id} is {known.status}")
        else:
            self._deduct(request)

    def _deduct(self, request: DeductionRequest) -> None:
        id = deduction_id(request.session_id)
        if not self._append_deduction(id, request):
            return  # this session's credit was deducted before: by design, nothing to do
        self._announce(
            events.SessionCreditDeducted(
                user_id=request.user_id,
                session_id=request.session_id,
                trainer_id=request.trainer_id,
                workout_id=request.workout_id,
                cause=request.cause,
                balance=self.balance_of(request.user_id),
                caused_by=request.caused_by,
            ),
            event_id=id,
        )

    def _append_deduction(self, id: uuid.UUID, request: DeductionRequest) -> bool:
        return self._append(
            id,
            user_id=request.user_id,
            kind=EntryKind.DEDUCTION,
            amount=-1,
            session_id=request.session_id,
            trainer_id=request.trainer_id,
            workout_id=request.workout_id,
            cause=request.cause,
            caused_by=request.caused_by,
        )

    def _restore(self, session_id: int, *, reason: str, caused_by: str) -> None:
        deduction = self.entries.get(deduction_id(session_id))
        if deduction is None:
            return
        id = restoration_id(session_id)
        if not self._append(
            id,
            user_id=deduction.user_id,
            kind=EntryKind.RESTORATION,
            amount=1,
            session_id=session_id,
            trainer_id=deduction.trainer_id,
            reason=reason,
            caused_by=caused_by,
        ):
            return
        self._announce(
            events.SessionCreditRestored(
                user_id=deduction.user_id,
                session_id=session_id,
                reason=reason,
                balance=self.balance_of(deduction.user_id),
                caused_by=caused_by,
            ),
            event_id=id,
        )

    def _reject(self, request: DeductionRequest, reason: str) -> None:
        id = str(rejection_id(request.caused_by))
        if id in self.rejected:
            return
        self.rejected.add(id)
        self._announce(
            events.CreditDeductionRejected(
                user_id=request.user_id,
                session_id=request.session_id,
                workout_id=request.workout_id,
                reason=reason,
            ),
            event_id=id,
        )

    def _settle_parked(self, session_id: int, known: KnownSession) -> None:
        for parked in self.parked.pop(session_id, []):
            if parked.id is not None:
                self.unparked.append(parked.id)
            self._decide(parked.request, known)

    # --- balance --------------------------------------------------------------------------

    def balance_of(self, user_id: int) -> events.Balance:
        return self._balance(user_id).snapshot()

    def _balance(self, user_id: int) -> ClientBalance:
        return self.balances.setdefault(user_id, ClientBalance())

    # --- entries --------------------------------------------------------------------------

    def _append(self, id: uuid.UUID, **row: Any) -> bool:
        """Add a ledger entry unless its business key is already there; whether it is new."""
        if id in self.entries:
            return False
        full_row = {**dict.fromkeys(OPTIONAL_ENTRY_COLUMNS), **row, "id": id}
        self.entries[id] = Entry(row["user_id"], row.get("trainer_id"), full_row)
        balance = self._balance(row["user_id"])
        if row["kind"] == EntryKind.GRANT:
            balance.total += row["amount"]
            balance.total_change += row["amount"]
        else:  # a deduction (-1) uses a credit, a restoration (+1) gives it back
            balance.used -= row["amount"]
            balance.used_change -= row["amount"]
        return True

    def _announce(self, payload: events.EventPayload, *, event_id: uuid.UUID | str) -> None:
        # In the trace context of the event that caused it (captured now).
        self.announced.append(Announced(payload, str(event_id)))
