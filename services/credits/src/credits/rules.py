"""The credit ledger's rules, in the business's words: every one of them is in this file
(`docs/credits.md` tells them to a studio owner).

- A purchase opens a package and grants its credits once, whoever sends it and however
  often; so does a staff grant with one `Idempotency-Key` (a package of N sessions).
- A delivered trainer-led session uses one credit, exactly once per session, whichever of its
  causes comes first: its trainer-led workout logged in progress or completed, or the
  session completed. It draws from one package: of those that can pay on the day it was
  delivered, the one that expires soonest, then the oldest. An unlimited package pays
  without a count, up to its weekly cap; a session no package can pay is charged all the
  same (the balance goes below zero) and names no package.
- A booked session holds a credit until it is delivered, cancelled or missed.
- A session cancelled within its late-cancel window, or missed, under a policy that says so
  (the one stamped on its booking), forfeits its credit instead; staff may waive a forfeit.
- A deduction for a session not booked yet is parked, and settled when the booking arrives.
- A deduction for a session booked for another client or trainer, or cancelled or missed,
  is rejected with the reason; so is any event about a session that names someone else.
- A workout called off while its deduction is parked withdraws it: it is never charged.
- A session cancelled or missed after its credit was deducted gives the credit back, once,
  to the package that paid.
- A package's credits left when its validity ends (and `EXPIRY_GRACE` after it) expire.
- A completed solo workout counts against a hybrid package's solo allowance; never refused.
- A group session is a set of places, one per client who joined: each place is booked,
  held, charged, cancelled (its client left), missed or given back exactly as a one-to-one
  session is, so each attending client is charged once per group session (`Place`).

`Ledger` holds what one batch of events (or one request) touches, loaded by the store
(`credits.store`), and decides in memory: no database, no clock (time is given), no I/O.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable, Iterator, MutableMapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from functools import lru_cache
from typing import Any, NamedTuple

from contracts import events
from contracts.envelope import Event
from contracts.events import (
    BOOKED_SESSION_TYPES,
    COUNTED_PACKAGE_TYPES,
    CancellationPolicy,
    DeductionCause,
    ForfeitCause,
    PackageType,
    SessionType,
    WorkoutStatus,
)
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
_NAMESPACE_HASH = hashlib.sha1(LEDGER_NAMESPACE.bytes, usedforsecurity=False)
#: Places whose entry ids are kept made: several batches' worth (a batch is 500 records),
#: about 3 MiB. 16,384 took 11 MiB of the service's 150 MiB budget for no more hits.
SESSION_IDS_REMEMBERED = 4_096

#: What a staff grant's entry names as its cause: the request itself leaves no event behind
#: but the grant's own announcement (the `Idempotency-Key` lives on in the entry's id).
STAFF_GRANT = "staff-grant"

#: How long after its validity a package still pays for sessions delivered before the end
#: whose events arrive late; then what is left of it expires.
EXPIRY_GRACE = timedelta(hours=48)
#: How long before its end a package with something left is announced as expiring soon.
EXPIRY_NOTICE = timedelta(days=7)
#: Available credits at or below which a client is announced as running low, by default.
DEFAULT_LOW_THRESHOLD = 1

#: Statuses of a session that still holds its credit (booked, not delivered or ended yet).
HOLDING_STATUSES = frozenset({SessionStatus.SCHEDULED, SessionStatus.IN_PROGRESS})

#: What the credits service reads back from its own topic (see `Ledger.restore`).
LedgerEvent = (
    events.CreditsGranted
    | events.SessionCreditDeducted
    | events.SessionCreditRestored
    | events.CreditDeductionRejected
    | events.SessionCreditForfeited
    | events.CreditsExpired
    | events.SoloWorkoutCounted
    | events.CreditsRunningLow
    | events.PackageExpiringSoon
)

#: Columns an entry may leave out (NULL); every new entry's row names them all.
OPTIONAL_ENTRY_COLUMNS = (
    "purchase_id",
    "session_id",
    "trainer_id",
    "workout_id",
    "package_id",
    "cause",
    "reason",
    "effective_at",
)
_NO_OPTIONAL_COLUMNS = dict.fromkeys(OPTIONAL_ENTRY_COLUMNS)


class EntryKind(StrEnum):
    GRANT = "grant"
    DEDUCTION = "deduction"
    RESTORATION = "restoration"
    FORFEIT = "forfeit"
    WAIVER = "waiver"
    EXPIRY = "expiry"
    SOLO = "solo"


#: Entries that take a credit (-1, or 0 when an unlimited package pays) and give one back.
CHARGES = frozenset({EntryKind.DEDUCTION, EntryKind.FORFEIT})
RETURNS = frozenset({EntryKind.RESTORATION, EntryKind.WAIVER})


class BookedForSomeoneElse(RuleBroken):
    """An event naming a client and trainer other than those its session is booked for."""


class NoForfeit(RuleBroken):
    """A waiver asked for a session whose credit this client did not forfeit."""


class PurchaseGrantedAlready(RuleBroken):
    """A grant naming a purchase that another entry of the ledger granted already: a
    purchase is granted once (read back from the ledger topic, a second grant of it is no
    entry credits wrote)."""


class Place(NamedTuple):
    """What one charge is about: a one-to-one session (`user_id` None: its one client) or
    one client's place in a group session. The ledger's entries about it are keyed by it, so
    a group session charges each of its clients once, and a one-to-one session's entries
    keep the ids they always had."""

    session_id: int
    user_id: int | None = None

    @classmethod
    def of(cls, session_id: int, user_id: int, *, group: bool) -> Place:
        return cls(session_id, user_id if group else None)

    @property
    def key(self) -> tuple[int, ...]:
        """The business key its entry ids and notices are made of."""
        return (self.session_id,) if self.user_id is None else (self.session_id, self.user_id)

    @property
    def group(self) -> bool:
        return self.user_id is not None


def entry_id(*business_key: object) -> uuid.UUID:
    """`uuid.uuid5` of the key in the ledger's namespace, the namespace hashed once: every
    event decided makes several of these."""
    digest = _NAMESPACE_HASH.copy()
    digest.update(":".join(str(part) for part in business_key).encode())
    return uuid.UUID(bytes=digest.digest()[:16], version=5)


class SessionEntryIds(NamedTuple):
    """Every entry one session may have: what deciding about it needs loaded."""

    deduction: uuid.UUID
    restoration: uuid.UUID
    forfeit: uuid.UUID
    waiver: uuid.UUID


@lru_cache(maxsize=SESSION_IDS_REMEMBERED)
def session_entry_ids(place: Place) -> SessionEntryIds:
    """Made once per place while it is being decided about (loading and each rule ask for
    them again and again)."""
    kinds = ("deduction", "restoration", "forfeit", "waiver")
    return SessionEntryIds(*(entry_id(kind, *place.key) for kind in kinds))


def deduction_id(place: Place) -> uuid.UUID:
    return session_entry_ids(place).deduction


def restoration_id(place: Place) -> uuid.UUID:
    return session_entry_ids(place).restoration


def forfeit_id(place: Place) -> uuid.UUID:
    return session_entry_ids(place).forfeit


def waiver_id(place: Place) -> uuid.UUID:
    return session_entry_ids(place).waiver


def place_announced(session_id: int, user_id: int, id: uuid.UUID, kind: str) -> Place:
    """The place an announced entry is about, told by its id: an announcement names the
    session and the client, and a group place's ids are made of both."""
    one_to_one = Place(session_id)
    return (
        one_to_one
        if getattr(session_entry_ids(one_to_one), kind) == id
        else Place(session_id, user_id)
    )


def purchase_grant_id(purchase_id: str) -> uuid.UUID:
    return entry_id("grant", "purchase", purchase_id)


def keyed_grant_id(grant_key: str) -> uuid.UUID:
    return entry_id("grant", grant_key)


def expiry_id(package_id: uuid.UUID, after: uuid.UUID | None = None) -> uuid.UUID:
    """A package's expiry; `after` a credit given back to it once expired (it expires too)."""
    return entry_id("expiry", package_id) if after is None else entry_id("expiry", after)


def solo_id(workout_id: uuid.UUID) -> uuid.UUID:
    return entry_id("solo", workout_id)


def rejection_id(caused_by: str) -> uuid.UUID:
    return entry_id("rejection", caused_by)


def withdrawal_id(workout_id: uuid.UUID) -> uuid.UUID:
    """The id of the rejection announcing a withdrawn deduction: a rebuild tells it apart
    from other rejections by it (see `Ledger.restore`)."""
    return entry_id("withdrawal", workout_id)


def running_low_id(user_id: int, crossed_by: object) -> uuid.UUID:
    return entry_id("running-low", user_id, crossed_by)


def expiring_soon_id(package_id: uuid.UUID) -> uuid.UUID:
    return entry_id("expiring-soon", package_id)


def week_of(moment: datetime) -> date:
    """The Monday (UTC) of a moment's week: what a weekly cap counts by."""
    day = moment.astimezone(UTC).date()
    return day - timedelta(days=day.weekday())


def _cause_of_unattributed(event: Event[Any]) -> str:
    """An announcement without `causedBy`: a staff grant's or waiver's, or one made before
    the field."""
    announced = event.payload
    if isinstance(announced, events.CreditsGranted) and announced.purchase_id is None:
        return STAFF_GRANT
    if isinstance(announced, events.SessionCreditRestored) and announced.restores == "forfeit":
        return STAFF_GRANT
    return event.id


@dataclass(frozen=True, slots=True)
class DeductionRequest:
    """One reason to deduct a session's credit: a trainer-led or group workout, or a
    completed session."""

    session_id: int
    user_id: int
    trainer_id: int
    workout_id: uuid.UUID | None
    cause: DeductionCause
    caused_by: str
    #: When the event says the session was delivered (the workout's date, the completion's
    #: time): the session's booked date goes first when it is known.
    delivered_at: datetime | None = None
    #: A place in a group session rather than a one-to-one session.
    group: bool = False

    @property
    def place(self) -> Place:
        return Place.of(self.session_id, self.user_id, group=self.group)


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
    #: When it is booked for (unknown until its booking is read).
    session_date: datetime | None = None
    #: The cancellation policy stamped on its booking (None: nothing is forfeited).
    policy: CancellationPolicy | None = None
    #: When it was cancelled or missed.
    ended_at: datetime | None = None
    #: Whether it holds a credit of its client's balance.
    held: bool = False


#: The end of a package that never expires, for ordering.
_NEVER = datetime.max.replace(tzinfo=UTC)


@dataclass(slots=True)
class Package:
    """A client's package: what it gives, until when, and what it has paid so far."""

    id: uuid.UUID
    user_id: int
    type: PackageType
    sessions: int
    purchased_at: datetime
    valid_until: datetime | None = None
    solo_allowance: int | None = None
    weekly_cap: int | None = None
    purchase_id: str | None = None
    name: str | None = None
    #: Counted credits it paid, net of those given back.
    used: int = 0
    expired: int = 0
    solo_used: int = 0
    #: Its expiry is recorded: it pays for nothing more.
    closed: bool = False
    #: Its "expiring soon" heads-up was announced.
    warned: bool = False
    #: Sessions an unlimited package paid per week (by Monday), for its weekly cap.
    weeks: dict[date, int] = field(default_factory=dict)
    changed: bool = False
    changed_weeks: set[date] = field(default_factory=set)

    @property
    def counted(self) -> bool:
        return self.type in COUNTED_PACKAGE_TYPES

    @property
    def left(self) -> int:
        return self.sessions - self.used - self.expired

    def valid_at(self, moment: datetime) -> bool:
        return self.valid_until is None or moment < self.valid_until

    def can_pay(self, delivered_at: datetime | None) -> bool:
        """Whether it pays for a session delivered at `delivered_at`; when the day is not
        known, only a counted package with something left does."""
        if self.closed:
            return False
        if delivered_at is None:
            return self.counted and self.left > 0
        if not self.valid_at(delivered_at):
            return False
        if self.counted:
            return self.left > 0
        if self.type is PackageType.UNLIMITED:
            cap = self.weekly_cap
            return cap is None or self.weeks.get(week_of(delivered_at), 0) < cap
        return False  # solo-only: no trainer-led sessions

    def order(self) -> tuple[bool, datetime, datetime, str]:
        """Soonest to expire first (never expiring last), then the oldest."""
        end = self.valid_until or _NEVER
        return (self.valid_until is None, end, self.purchased_at, str(self.id))

    def count_week(self, delivered_at: datetime, change: int) -> None:
        """Count a session paid (or given back) in its week, for the weekly cap: a package
        without one counts none (the store loads the weeks of capped packages only)."""
        if self.weekly_cap is None:
            return
        week = week_of(delivered_at)
        self.weeks[week] = self.weeks.get(week, 0) + change
        self.changed_weeks.add(week)


@dataclass(slots=True)
class Entry:
    """What later decisions need of an entry; new ones carry their whole row."""

    user_id: int
    trainer_id: int | None
    row: dict[str, Any] | None = None
    package_id: uuid.UUID | None = None
    amount: int = 0
    effective_at: datetime | None = None


@dataclass(slots=True)
class ClientBalance:
    total: int = 0
    used: int = 0
    held: int = 0
    expired: int = 0
    #: Whether the client is at or below the running-low threshold (announced, or never
    #: above it): the next heads-up waits for a rise above it first.
    low: bool = True
    total_change: int = 0
    used_change: int = 0
    held_change: int = 0
    expired_change: int = 0
    low_changed: bool = False
    #: A package of the client's was opened: the store keeps packages beside their client's
    #: balance row, so the row is written even when no figure moved (an unlimited package).
    opened: bool = False

    @property
    def remaining(self) -> int:
        return self.total - self.used - self.expired

    @property
    def available(self) -> int:
        return self.remaining - self.held

    @property
    def changed(self) -> bool:
        changes = (self.total_change, self.used_change, self.held_change, self.expired_change)
        return any(changes) or self.low_changed or self.opened

    def snapshot(self) -> events.Balance:
        return events.Balance(
            total=self.total,
            used=self.used,
            remaining=self.remaining,
            held=self.held,
            expired=self.expired,
            available=self.available,
        )


class Packages(MutableMapping[uuid.UUID, Package]):
    """Packages by id, and by client: a batch loads every package of its clients, and each
    decision looks at one client's."""

    def __init__(self) -> None:
        self._by_id: dict[uuid.UUID, Package] = {}
        self._by_client: dict[int, dict[uuid.UUID, Package]] = {}

    def of(self, user_id: int) -> Iterable[Package]:
        return self._by_client.get(user_id, {}).values()

    def __getitem__(self, id: uuid.UUID) -> Package:
        return self._by_id[id]

    def __setitem__(self, id: uuid.UUID, package: Package) -> None:
        # A package's client never changes, but its replacement's might. (Not `self.pop`:
        # the mapping's generic one raises and catches a KeyError for every new package.)
        replaced = self._by_id.get(id)
        if replaced is not None:
            del self._by_client[replaced.user_id][id]
        self._by_id[id] = package
        self._by_client.setdefault(package.user_id, {})[id] = package

    def __delitem__(self, id: uuid.UUID) -> None:
        package = self._by_id.pop(id)
        del self._by_client[package.user_id][id]

    def __iter__(self) -> Iterator[uuid.UUID]:
        return iter(self._by_id)

    def __len__(self) -> int:
        return len(self._by_id)


@dataclass
class Ledger:
    """The part of the ledger a batch or a request touches, and what was decided on it."""

    #: One-to-one sessions and group places.
    sessions: dict[Place, KnownSession] = field(default_factory=dict)
    parked: dict[Place, list[Parked]] = field(default_factory=dict)
    #: Workouts whose parked deduction was withdrawn (see `withdraw_parked`), of the sessions
    #: loaded.
    withdrawn: set[uuid.UUID] = field(default_factory=set)
    entries: dict[uuid.UUID, Entry] = field(default_factory=dict)
    balances: dict[int, ClientBalance] = field(default_factory=dict)
    #: Every package of the clients loaded.
    packages: Packages = field(default_factory=Packages)
    low_threshold: int = DEFAULT_LOW_THRESHOLD
    #: How long after its end a package still pays for sessions delivered before it.
    expiry_grace: timedelta = EXPIRY_GRACE
    # What was decided since loading, for the store to write.
    #: Ids of parked rows settled or withdrawn.
    unparked: list[int] = field(default_factory=list)
    #: The withdrawals decided since loading: session by workout.
    new_withdrawals: dict[uuid.UUID, int] = field(default_factory=dict)
    #: Ids of announcements that are no entry (rejections, heads-ups) decided since loading:
    #: the store leaves out those announced before (a rebuild reads them back first).
    unrecorded: set[str] = field(default_factory=set)
    announced: list[Announced] = field(default_factory=list)
    #: The entry that granted each purchase the batch names, of those granted.
    purchase_grants: dict[str, uuid.UUID] = field(default_factory=dict)

    # --- credits in -----------------------------------------------------------------------

    def grant_purchase(self, purchase: events.PackagePurchased, *, caused_by: str) -> None:
        """A package and its credits, once per purchase."""
        id = purchase_grant_id(purchase.purchase_id)
        terms = purchase.terms()
        self._grant(
            id,
            events.GrantedPackage(
                package_id=id, purchased_at=purchase.purchased_at, **terms.model_dump()
            ),
            user_id=purchase.user_id,
            purchase_id=purchase.purchase_id,
            reason=purchase.package_name,
            caused_by=caused_by,
        )

    def grant_by_staff(
        self, *, user_id: int, amount: int, reason: str, grant_key: str, at: datetime
    ) -> None:
        """Credits staff add by hand, once per `grant_key` (their request's key): a package
        of `amount` sessions that never expires."""
        id = keyed_grant_id(grant_key)
        self._grant(
            id,
            events.GrantedPackage(package_id=id, purchased_at=at, sessions=amount),
            user_id=user_id,
            purchase_id=None,
            reason=reason,
            caused_by=STAFF_GRANT,
        )

    def _grant(
        self,
        id: uuid.UUID,
        package: events.GrantedPackage,
        *,
        user_id: int,
        purchase_id: str | None,
        reason: str | None,
        caused_by: str,
    ) -> None:
        if not self._record_grant(
            id, package, user_id=user_id, purchase_id=purchase_id, reason=reason, by=caused_by
        ):
            return
        self._announce(
            events.CreditsGranted(
                user_id=user_id,
                amount=package.sessions,
                purchase_id=purchase_id,
                reason=reason,
                balance=self.balance_of(user_id),
                caused_by=None if caused_by == STAFF_GRANT else caused_by,
                package=package,
            ),
            event_id=id,
        )
        self._watch_threshold(user_id, crossed_by=id)

    def _record_grant(
        self,
        id: uuid.UUID,
        package: events.GrantedPackage,
        *,
        user_id: int,
        purchase_id: str | None,
        reason: str | None,
        by: str,
    ) -> bool:
        entry = {"purchase_id": purchase_id, "reason": reason, "caused_by": by}
        if purchase_id is not None:
            granted_by = self.purchase_grants.setdefault(purchase_id, id)
            if granted_by != id:
                raise PurchaseGrantedAlready(
                    f"purchase {purchase_id!r} was granted already, by entry {granted_by}"
                )
        if not self._append(
            id,
            user_id=user_id,
            kind=EntryKind.GRANT,
            amount=package.sessions,
            package_id=package.package_id,
            effective_at=package.purchased_at,
            **entry,
        ):
            return False
        if package.package_id not in self.packages:
            self.packages[package.package_id] = Package(
                id=package.package_id,
                user_id=user_id,
                type=package.package_type,
                sessions=package.sessions,
                purchased_at=package.purchased_at,
                valid_until=package.valid_until,
                solo_allowance=package.solo_workouts,
                weekly_cap=package.weekly_cap,
                purchase_id=purchase_id,
                name=reason,
                changed=True,
            )
            self._balance(user_id).opened = True
        return True

    def restore(self, event: Event[LedgerEvent]) -> None:
        """Record an entry from its announcement on `credits.ledger`, as announced.

        The service reads its ledger topic before its inputs (see `servicekit.history`), so
        a rebuild records every entry with the package, cause, workout and balance it was
        announced with, whichever order the inputs happen to give, and announces nothing
        twice. Live, announcements are recorded as applied when they are made (see
        `credits.store`), so they come back as duplicates and never reach this. A rejection
        or a heads-up is no entry: remembering its id (the consumer does) is enough, but for
        a withdrawal's, whose workout must never be charged afterwards, and an expiring
        package's, which is not announced again."""
        announced = event.payload
        id = uuid.UUID(event.id)
        caused_by = getattr(announced, "caused_by", None) or _cause_of_unattributed(event)
        balance = getattr(announced, "balance", None)
        if balance is not None:
            self._remember_low(announced.user_id, balance)
        if isinstance(announced, events.CreditsGranted):
            granted = announced.package or events.GrantedPackage(
                package_id=id, purchased_at=event.occurred_at, sessions=announced.amount
            )
            self._record_grant(
                id,
                granted,
                user_id=announced.user_id,
                purchase_id=announced.purchase_id,
                reason=announced.reason,
                by=caused_by,
            )
        elif isinstance(announced, events.SessionCreditDeducted):
            place = place_announced(announced.session_id, announced.user_id, id, "deduction")
            request = DeductionRequest(
                session_id=announced.session_id,
                user_id=announced.user_id,
                trainer_id=announced.trainer_id,
                workout_id=announced.workout_id,
                cause=announced.cause,
                caused_by=caused_by,
                delivered_at=announced.delivered_at,
                group=place.group,
            )
            if announced.package_id is not None:
                payer = self.packages.get(announced.package_id)
            elif announced.delivered_at is None:
                # Announced before packages: drawn from the oldest grant with a credit left,
                # as the migration to packages attributed those already recorded.
                payer = self._oldest_with_credit(announced.user_id)
            else:
                payer = None  # no package could pay it
            self._record_charge(
                id, EntryKind.DEDUCTION, request, payer, delivered_at=announced.delivered_at
            )
        elif isinstance(announced, events.SessionCreditForfeited):
            place = place_announced(announced.session_id, announced.user_id, id, "forfeit")
            request = DeductionRequest(
                session_id=announced.session_id,
                user_id=announced.user_id,
                trainer_id=announced.trainer_id,
                workout_id=None,
                cause=announced.cause,  # type: ignore[arg-type]  # a forfeit's own cause
                caused_by=caused_by,
                group=place.group,
            )
            payer = self.packages.get(announced.package_id) if announced.package_id else None
            self._record_charge(
                id, EntryKind.FORFEIT, request, payer, delivered_at=announced.session_date
            )
        elif isinstance(announced, events.SessionCreditRestored):
            kind = EntryKind.WAIVER if announced.restores == "forfeit" else EntryKind.RESTORATION
            place = place_announced(announced.session_id, announced.user_id, id, kind)
            charge_id = forfeit_id(place) if kind is EntryKind.WAIVER else deduction_id(place)
            self._record_return(id, kind, place, charge_id, reason=announced.reason, by=caused_by)
        elif isinstance(announced, events.CreditsExpired):
            package = self.packages.get(announced.package_id)
            self._record_expiry(
                id,
                user_id=announced.user_id,
                package=package,
                amount=announced.amount,
                at=announced.valid_until,
                by=caused_by,
            )
        elif isinstance(announced, events.SoloWorkoutCounted):
            package = self.packages.get(announced.package_id)
            if package is not None:
                self._record_solo(announced.workout_id, package, by=caused_by)
        elif isinstance(announced, events.PackageExpiringSoon):
            package = self.packages.get(announced.package_id)
            if package is not None and not package.warned:
                package.warned = package.changed = True
        elif (
            isinstance(announced, events.CreditDeductionRejected)
            and announced.workout_id is not None
            and id == withdrawal_id(announced.workout_id)
        ):
            self._remember_withdrawal(announced.session_id, announced.workout_id)

    # --- sessions -------------------------------------------------------------------------

    def session_seen(
        self,
        place: Place,
        *,
        user_id: int,
        trainer_id: int,
        status: SessionStatus | None,
        caused_by: str,
        booked: events.SessionBooked | events.ParticipantJoined | None = None,
        at: datetime | None = None,
    ) -> None:
        """Learn of a session or a group place (its booking, or an event that names its
        client and trainer and moves it to `status` at `at`); `status` None keeps the status
        already known. An event naming someone else is refused. Then settle parked
        deductions, give back the credit of a place that turns out cancelled or missed,
        judge it by its policy, and hold or release its credit."""
        known = self.sessions.get(place)
        if known is not None:
            mismatch = self._mismatch(place, user_id=user_id, trainer_id=trainer_id)
            if mismatch:
                raise BookedForSomeoneElse(mismatch)
        if known is None:
            known = KnownSession(
                user_id, trainer_id, status or SessionStatus.SCHEDULED, changed=True
            )
            self.sessions[place] = known
        elif status is not None and status is not known.status:
            known.status = status
            known.changed = True
        if booked is not None and known.session_date is None:
            known.session_date = booked.session_date
            known.policy = booked.policy
            known.changed = True
        if status in UNDELIVERED_STATUSES and at is not None and known.ended_at is None:
            known.ended_at = at
            known.changed = True
        self._settle_parked(place, known)
        if status in UNDELIVERED_STATUSES:
            self._restore(place, reason=f"session {status}", caused_by=caused_by)
        if known.status in UNDELIVERED_STATUSES:
            self._judge(place, known, caused_by=caused_by)
        self._refresh_hold(place, known)

    def group_ended(
        self,
        session_id: int,
        *,
        trainer_id: int,
        attended: Iterable[int] = (),
        no_shows: Iterable[int] = (),
        cancelled: bool = False,
        at: datetime,
        caused_by: str,
    ) -> None:
        """A group session completed (each place attended is charged once, each missed one
        judged as a no-show) or called off (every place it has released, nothing
        forfeited: the studio called it off, not the client). A place the completion does
        not name keeps what it has until an event names it."""
        for status, clients in (
            (SessionStatus.NO_SHOW, no_shows),
            (SessionStatus.COMPLETED, attended),
        ):
            for user_id in clients:
                place = Place(session_id, user_id)
                self.session_seen(
                    place,
                    user_id=user_id,
                    trainer_id=trainer_id,
                    status=status,
                    caused_by=caused_by,
                    at=at,
                )
                if status is SessionStatus.COMPLETED:
                    self.deduct(
                        DeductionRequest(
                            session_id=session_id,
                            user_id=user_id,
                            trainer_id=trainer_id,
                            workout_id=None,
                            cause=events.SESSION_COMPLETED,
                            caused_by=caused_by,
                            delivered_at=at,
                            group=True,
                        )
                    )
        if cancelled:
            for place in sorted(self.places_of(session_id)):
                known = self.sessions[place]
                # No `at`: a place ends without a late cancel of its own.
                self.session_seen(
                    place,
                    user_id=known.user_id,
                    trainer_id=trainer_id,
                    status=SessionStatus.CANCELLED,
                    caused_by=caused_by,
                )

    def places_of(self, session_id: int) -> list[Place]:
        """The places of a group session loaded (the store loads every one of a session a
        batch names)."""
        return [p for p in self.sessions if p.session_id == session_id and p.group]

    def rescheduled(self, session_id: int, session_date: datetime) -> None:
        """A booked session's new date (every place of a group session's): the day it is
        judged and paid by."""
        for place in [Place(session_id), *self.places_of(session_id)]:
            known = self.sessions.get(place)
            if known is not None and known.session_date is not None:
                known.session_date = session_date
                known.changed = True

    def _mismatch(self, place: Place, *, user_id: int, trainer_id: int) -> str | None:
        known = self.sessions.get(place)
        if known is None:
            return None
        booked = (known.user_id, known.trainer_id)
        return booked_for_someone_else(place.session_id, booked=booked, named=(user_id, trainer_id))

    def holds_loaded(self) -> None:
        """Whether each loaded place holds a credit follows from its status and entries:
        the store derives it after loading, rather than keep it (a deduction then writes no
        session row)."""
        for place, known in self.sessions.items():
            known.held = self._holds(place, known)

    def _holds(self, place: Place, known: KnownSession) -> bool:
        """A place holds a credit while booked and neither charged nor ended."""
        return (
            known.status in HOLDING_STATUSES
            and deduction_id(place) not in self.entries
            and forfeit_id(place) not in self.entries
        )

    def _refresh_hold(self, place: Place, known: KnownSession) -> None:
        holds = self._holds(place, known)
        if holds is known.held:
            return
        known.held = holds
        balance = self._balance(known.user_id)
        change = 1 if holds else -1
        balance.held += change
        balance.held_change += change
        label = ":".join(str(part) for part in place.key)
        self._watch_threshold(known.user_id, crossed_by=f"hold:{label}:{holds}")

    def _judge(self, place: Place, known: KnownSession, *, caused_by: str) -> None:
        """Forfeit the credit of a place cancelled late or missed, under its policy."""
        policy = known.policy
        if policy is None or not policy.forfeits_anything:
            return
        cause: ForfeitCause | None = None
        if known.status is SessionStatus.NO_SHOW and policy.no_show_forfeits:
            cause = events.NO_SHOW
        elif (
            known.status is SessionStatus.CANCELLED
            and policy.late_cancel_hours > 0
            and known.session_date is not None
            and known.ended_at is not None
            and known.session_date - known.ended_at <= timedelta(hours=policy.late_cancel_hours)
        ):
            cause = events.LATE_CANCEL
        if cause is None:
            return
        request = DeductionRequest(
            session_id=place.session_id,
            user_id=known.user_id,
            trainer_id=known.trainer_id,
            workout_id=None,
            cause=cause,  # type: ignore[arg-type]  # a forfeit's own cause
            caused_by=caused_by,
            group=place.group,
        )
        id = forfeit_id(place)
        payer = self._payer(known.user_id, known.session_date)
        if not self._record_charge(
            id, EntryKind.FORFEIT, request, payer, delivered_at=known.session_date
        ):
            return
        # The hold becomes the charge before the balance is announced, as for a deduction.
        self._refresh_hold(place, known)
        self._announce(
            events.SessionCreditForfeited(
                user_id=known.user_id,
                session_id=place.session_id,
                trainer_id=known.trainer_id,
                cause=cause,
                policy=policy,
                package_id=payer.id if payer else None,
                session_date=known.session_date,
                balance=self.balance_of(known.user_id),
                caused_by=caused_by,
            ),
            event_id=id,
        )
        self._watch_threshold(known.user_id, crossed_by=id)

    def waive_forfeit(self, *, user_id: int, session_id: int, reason: str) -> None:
        """Staff give back a forfeited credit, once per session or group place (a
        restoration with a reason). Refused when the client forfeited nothing for that
        session."""
        for place in (Place(session_id), Place(session_id, user_id)):
            forfeit = self.entries.get(forfeit_id(place))
            if forfeit is not None and forfeit.user_id == user_id:
                break
        else:
            raise NoForfeit(f"client {user_id} forfeited no credit for session {session_id}")
        id = waiver_id(place)
        if not self._record_return(
            id, EntryKind.WAIVER, place, forfeit_id(place), reason=reason, by=STAFF_GRANT
        ):
            return
        self._announce(
            events.SessionCreditRestored(
                user_id=user_id,
                session_id=session_id,
                reason=reason,
                balance=self.balance_of(user_id),
                package_id=forfeit.package_id,
                restores="forfeit",
            ),
            event_id=id,
        )
        self._expire_given_back(forfeit.package_id, after=id)
        self._watch_threshold(user_id, crossed_by=id)

    # --- credits out ----------------------------------------------------------------------

    def workout_reported(
        self,
        workout: events.WorkoutLogged | events.WorkoutStatusChanged,
        *,
        caused_by: str,
        at: datetime,
    ) -> None:
        """A trainer-led or group workout that is being or has been delivered uses its
        session's credit (its client's place's, in a group); one called off withdraws its
        parked deduction. A completed solo or trainer-assisted workout (never charged a
        credit) counts against a hybrid package's allowance. It happened on its date, or
        when its event says (`at`) for a change of status, which carries none."""
        when = workout.date if isinstance(workout, events.WorkoutLogged) else at
        if workout.session_type not in BOOKED_SESSION_TYPES:
            if workout.status is WorkoutStatus.COMPLETED:
                self.solo_done(workout.user_id, workout.workout_id, when, caused_by=caused_by)
            return
        # The contract guarantees both for booked sessions' workouts; this narrows the types.
        assert workout.session_id is not None
        assert workout.trainer_id is not None
        group = workout.session_type is SessionType.GROUP
        if workout.status is WorkoutStatus.CANCELLED and isinstance(
            workout, events.WorkoutStatusChanged
        ):
            self.withdraw_parked(
                Place.of(workout.session_id, workout.user_id, group=group),
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
                    delivered_at=when,
                    group=group,
                )
            )

    def solo_done(
        self, user_id: int, workout_id: uuid.UUID, when: datetime | None, *, caused_by: str
    ) -> None:
        """A completed solo workout, once: counted against the allowance of the client's
        hybrid package valid on its day (one with some left first), even past it."""
        if solo_id(workout_id) in self.entries:
            return
        hybrids = sorted(
            (
                p
                for p in self.packages.of(user_id)
                if p.type is PackageType.HYBRID
                and not p.closed
                and (when is None or p.valid_at(when))
            ),
            key=lambda p: (p.solo_used >= (p.solo_allowance or 0), p.order()),
        )
        if not hybrids:
            return
        package = hybrids[0]
        self._record_solo(workout_id, package, by=caused_by)
        allowance = package.solo_allowance or 0
        self._announce(
            events.SoloWorkoutCounted(
                user_id=user_id,
                workout_id=workout_id,
                package_id=package.id,
                solo_used=package.solo_used,
                solo_allowance=allowance,
                over=max(package.solo_used - allowance, 0),
                caused_by=caused_by,
            ),
            event_id=solo_id(workout_id),
        )

    def _record_solo(self, workout_id: uuid.UUID, package: Package, *, by: str) -> None:
        if self._append(
            solo_id(workout_id),
            user_id=package.user_id,
            kind=EntryKind.SOLO,
            amount=0,
            workout_id=workout_id,
            package_id=package.id,
            caused_by=by,
        ):
            package.solo_used += 1
            package.changed = True

    def deduct(self, request: DeductionRequest) -> None:
        """Deduct one credit for a delivered session, exactly once per session. A request for
        a session not booked yet waits for the booking (parked); one that does not fit it
        is rejected with the reason. A workout whose parked deduction was withdrawn never
        deducts."""
        if request.workout_id in self.withdrawn:
            return
        known = self.sessions.get(request.place)
        if known is None:
            self.parked.setdefault(request.place, []).append(Parked(request))
            return
        self._decide(request, known)

    def withdraw_parked(self, place: Place, *, workout_id: uuid.UUID, user_id: int) -> None:
        """A workout called off while its deduction waits for the session's booking: the
        deduction is dropped, never charged, and announced as rejected with the reason. The
        workout is remembered as withdrawn, so that nothing charges it later, in whatever
        order a rebuild reads the inputs. A workout with no parked deduction changes
        nothing: calling off a workout whose credit was deducted gives nothing back."""
        waiting = self.parked.get(place, [])
        withdrawn = [p for p in waiting if p.request.workout_id == workout_id]
        if not withdrawn:
            return
        self.parked[place] = [p for p in waiting if p.request.workout_id != workout_id]
        self.unparked.extend(p.id for p in withdrawn if p.id is not None)
        session_id = place.session_id
        if deduction_id(place) in self.entries:
            # A rebuild that read back first the deduction made live before the workout was
            # called off: it stands, as it did live.
            return
        self._remember_withdrawal(session_id, workout_id)
        id = withdrawal_id(workout_id)
        self.unrecorded.add(str(id))
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
            request.place, user_id=request.user_id, trainer_id=request.trainer_id
        )
        if mismatch:
            self._reject(request, mismatch)
        elif known.status in UNDELIVERED_STATUSES:
            self._reject(request, f"session {request.session_id} is {known.status}")
        else:
            self._deduct(request, known)

    def _deduct(self, request: DeductionRequest, known: KnownSession) -> None:
        id = deduction_id(request.place)
        if id in self.entries:
            return  # this place's credit was deducted before: by design, nothing to do
        delivered_at = known.session_date or request.delivered_at
        payer = self._payer(request.user_id, delivered_at)
        self._record_charge(id, EntryKind.DEDUCTION, request, payer, delivered_at=delivered_at)
        self._refresh_hold(request.place, known)
        self._announce(
            events.SessionCreditDeducted(
                user_id=request.user_id,
                session_id=request.session_id,
                trainer_id=request.trainer_id,
                workout_id=request.workout_id,
                cause=request.cause,
                balance=self.balance_of(request.user_id),
                caused_by=request.caused_by,
                package_id=payer.id if payer else None,
                delivered_at=delivered_at,
            ),
            event_id=id,
        )
        self._watch_threshold(request.user_id, crossed_by=id)

    def _oldest_with_credit(self, user_id: int) -> Package | None:
        counted = [
            p for p in self.packages.of(user_id) if p.counted and not p.closed and p.left > 0
        ]
        return min(counted, key=lambda p: (p.purchased_at, str(p.id)), default=None)

    def _payer(self, user_id: int, delivered_at: datetime | None) -> Package | None:
        """The package that pays for a session delivered at `delivered_at` (when unknown,
        any that can pay now): of those that can, the one that expires soonest, then the
        oldest. None when none can."""
        candidates = [p for p in self.packages.of(user_id) if p.can_pay(delivered_at)]
        return min(candidates, key=Package.order, default=None)

    def _record_charge(
        self,
        id: uuid.UUID,
        kind: EntryKind,
        request: DeductionRequest,
        payer: Package | None,
        *,
        delivered_at: datetime | None,
    ) -> bool:
        """A deduction or a forfeit: -1 from a counted package (or from none), 0 from an
        unlimited one."""
        free = payer is not None and not payer.counted
        if not self._append(
            id,
            user_id=request.user_id,
            kind=kind,
            amount=0 if free else -1,
            session_id=request.session_id,
            trainer_id=request.trainer_id,
            workout_id=request.workout_id,
            package_id=payer.id if payer else None,
            cause=request.cause,
            caused_by=request.caused_by,
            effective_at=delivered_at,
        ):
            return False
        if payer is not None:
            if payer.counted:
                payer.used += 1
            elif delivered_at is not None:
                payer.count_week(delivered_at, 1)
            payer.changed = True
        return True

    def _restore(self, place: Place, *, reason: str, caused_by: str) -> None:
        deduction = self.entries.get(deduction_id(place))
        if deduction is None:
            return
        id = restoration_id(place)
        if not self._record_return(
            id, EntryKind.RESTORATION, place, deduction_id(place), reason, caused_by
        ):
            return
        self._announce(
            events.SessionCreditRestored(
                user_id=deduction.user_id,
                session_id=place.session_id,
                reason=reason,
                balance=self.balance_of(deduction.user_id),
                caused_by=caused_by,
                package_id=deduction.package_id,
            ),
            event_id=id,
        )
        self._expire_given_back(deduction.package_id, after=id)
        self._watch_threshold(deduction.user_id, crossed_by=id)

    def _record_return(
        self,
        id: uuid.UUID,
        kind: EntryKind,
        place: Place,
        charge_id: uuid.UUID,
        reason: str,
        by: str,
    ) -> bool:
        """A restoration or a waiver: what its charge took goes back to the package that
        paid it."""
        charge = self.entries.get(charge_id)
        if charge is None:
            return False
        if not self._append(
            id,
            user_id=charge.user_id,
            kind=kind,
            amount=-charge.amount,
            session_id=place.session_id,
            trainer_id=charge.trainer_id,
            package_id=charge.package_id,
            reason=reason,
            caused_by=by,
        ):
            return False
        payer = self.packages.get(charge.package_id) if charge.package_id else None
        if payer is not None:
            if payer.counted:
                payer.used -= 1
            elif charge.effective_at is not None:
                payer.count_week(charge.effective_at, -1)
            payer.changed = True
        return True

    def _expire_given_back(self, package_id: uuid.UUID | None, *, after: uuid.UUID) -> None:
        """A credit given back to a package that has expired expires with it, at once."""
        package = self.packages.get(package_id) if package_id else None
        if package is None or not package.closed or not package.counted or package.left <= 0:
            return
        assert package.valid_until is not None  # only a package with an end is closed
        self._expire(package, package.left, id=expiry_id(package.id, after), caused_by=str(after))

    def _reject(self, request: DeductionRequest, reason: str) -> None:
        id = str(rejection_id(request.caused_by))
        if id in self.unrecorded:
            return
        self.unrecorded.add(id)
        self._announce(
            events.CreditDeductionRejected(
                user_id=request.user_id,
                session_id=request.session_id,
                workout_id=request.workout_id,
                reason=reason,
            ),
            event_id=id,
        )

    def _settle_parked(self, place: Place, known: KnownSession) -> None:
        for parked in self.parked.pop(place, []):
            if parked.id is not None:
                self.unparked.append(parked.id)
            self._decide(parked.request, known)

    # --- time -----------------------------------------------------------------------------

    def pass_time(self, now: datetime) -> None:
        """What time alone decides, for the packages loaded: each package whose validity
        ended `expiry_grace` ago expires with what is left of it (dated its end, whenever
        this runs), and one ending within `EXPIRY_NOTICE` with something left is announced
        once as expiring soon."""
        for package in sorted(self.packages.values(), key=Package.order):
            end = package.valid_until
            if end is None or package.closed:
                continue
            if now >= end + self.expiry_grace:
                package.closed = package.changed = True
                if package.counted and package.left > 0:
                    self._expire(package, package.left, id=expiry_id(package.id), caused_by=None)
            elif now >= end - EXPIRY_NOTICE and not package.warned:
                if package.counted and package.left <= 0:
                    continue
                package.warned = package.changed = True
                id = expiring_soon_id(package.id)
                self.unrecorded.add(str(id))
                self._announce(
                    events.PackageExpiringSoon(
                        user_id=package.user_id,
                        package_id=package.id,
                        valid_until=end,
                        sessions_left=max(package.left, 0) if package.counted else 0,
                    ),
                    event_id=id,
                )

    def _expire(
        self, package: Package, amount: int, *, id: uuid.UUID, caused_by: str | None
    ) -> None:
        assert package.valid_until is not None
        if not self._record_expiry(
            id,
            user_id=package.user_id,
            package=package,
            amount=amount,
            at=package.valid_until,
            by=caused_by or str(id),
        ):
            return
        self._announce(
            events.CreditsExpired(
                user_id=package.user_id,
                package_id=package.id,
                amount=amount,
                valid_until=package.valid_until,
                balance=self.balance_of(package.user_id),
                caused_by=caused_by,
            ),
            event_id=id,
        )
        self._watch_threshold(package.user_id, crossed_by=id)

    def _record_expiry(
        self,
        id: uuid.UUID,
        *,
        user_id: int,
        package: Package | None,
        amount: int,
        at: datetime,
        by: str,
    ) -> bool:
        if not self._append(
            id,
            user_id=user_id,
            kind=EntryKind.EXPIRY,
            amount=-amount,
            package_id=package.id if package else None,
            caused_by=by,
            effective_at=at,
        ):
            return False
        if package is not None:
            package.expired += amount
            package.closed = package.changed = True
        return True

    # --- balance --------------------------------------------------------------------------

    def balance_of(self, user_id: int) -> events.Balance:
        return self._balance(user_id).snapshot()

    def packages_of(self, user_id: int) -> list[Package]:
        return sorted(self.packages.of(user_id), key=Package.order)

    def _balance(self, user_id: int) -> ClientBalance:
        return self.balances.setdefault(user_id, ClientBalance())

    def _remember_low(self, user_id: int, announced: events.Balance) -> None:
        """Whether the client was at or below the threshold with the balance announced: a
        rebuild arms the running-low heads-up as it was live, announcing nothing."""
        balance = self._balance(user_id)
        low = announced.available <= self.low_threshold
        if low is not balance.low:
            balance.low = low
            balance.low_changed = True

    def _watch_threshold(self, user_id: int, *, crossed_by: object) -> None:
        """Announce once when available credits fall to the threshold; re-arm above it."""
        balance = self._balance(user_id)
        low = balance.available <= self.low_threshold
        if low is balance.low:
            return
        balance.low = low
        balance.low_changed = True
        if not low:
            return
        id = running_low_id(user_id, crossed_by)
        self.unrecorded.add(str(id))
        self._announce(
            events.CreditsRunningLow(
                user_id=user_id,
                threshold=self.low_threshold,
                balance=balance.snapshot(),
                caused_by=str(crossed_by),
            ),
            event_id=id,
        )

    # --- entries --------------------------------------------------------------------------

    def _append(self, id: uuid.UUID, **row: Any) -> bool:
        """Add a ledger entry unless its business key is already there; whether it is new."""
        if id in self.entries:
            return False
        full_row = {**_NO_OPTIONAL_COLUMNS, **row, "id": id}
        self.entries[id] = Entry(
            row["user_id"],
            row.get("trainer_id"),
            full_row,
            package_id=row.get("package_id"),
            amount=row["amount"],
            effective_at=row.get("effective_at"),
        )
        balance = self._balance(row["user_id"])
        kind, amount = row["kind"], row["amount"]
        if kind == EntryKind.GRANT:
            balance.total += amount
            balance.total_change += amount
        elif kind == EntryKind.EXPIRY:
            balance.expired -= amount
            balance.expired_change -= amount
        elif kind in CHARGES or kind in RETURNS:
            # A charge (-1) uses a credit, a return (+1) gives it back; 0 when unlimited.
            balance.used -= amount
            balance.used_change -= amount
        return True

    def _announce(self, payload: events.EventPayload, *, event_id: uuid.UUID | str) -> None:
        # In the trace context of the event that caused it (captured now).
        self.announced.append(Announced(payload, str(event_id)))
