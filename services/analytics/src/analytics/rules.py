"""A client's session usage, in the spec's terms, and how events change it. Pure: plain
state, no clock, no I/O.

Usage is how a client's completed workouts split between the session types (solo,
trainer-led, trainer-assisted and group: each a share of all of them), and where
their session credits stand (total, used, held, expired, remaining and available, as the
ledger's latest balance says). The store loads a batch's clients and workouts into a
`UsageBook`, the handlers record each event on it in order, and the store writes what
changed, with one announcement per client whose usage changed.

Why the final state does not depend on arrival order: a client's usage has two independent
halves. The workout counts depend only on `workouts.workout-sessions` and the credit balance
only on `credits.ledger`; each topic delivers one client's events in order (key `userId`),
and how the two topics interleave changes which intermediate usages are announced, never the
last one. Whether an event changes usage likewise depends only on its own topic's history,
so `asOf` (the latest change's time, see `UsageBook._settle`) ends the same too.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum

from contracts.events import Balance, SessionType, SessionUsageUpdated, TypeUsage, WorkoutStatus
from servicekit import tracing
from servicekit.domain import Announced, RuleBroken

ONE_DECIMAL = Decimal("0.1")


def no_credits() -> Balance:
    return Balance(total=0, used=0, remaining=0)


def percentage(part: int, whole: int) -> Decimal:
    """`part` as a percentage of `whole`, rounded half up to one decimal (2 of 3 -> 66.7).
    Decimal, not float: 0.25 of a tenth must round up, and binary floats cannot hold it."""
    if whole == 0:
        # A client with no completed workouts has no split to show, not an error.
        return Decimal("0.0")
    return (Decimal(part) * 100 / Decimal(whole)).quantize(ONE_DECIMAL, rounding=ROUND_HALF_UP)


class BadRange(ValueError):
    """A `from`/`to` that is not a date or an RFC 3339 time with an offset, or a range that
    ends before it starts (or where it starts: nothing is in it)."""


@dataclass(frozen=True, slots=True)
class DateRange:
    """The workouts taking place from `start` (included) until `end` (excluded); None on
    either side: unbounded. Built from the API's `from` and `to` (`between`)."""

    start: datetime | None = None
    end: datetime | None = None

    @classmethod
    def between(cls, start: str | None, end: str | None) -> DateRange:
        """A date as `from` is the start of that day (UTC), as `to` the end of it: both days
        are included, so `from=2026-01-01&to=2026-01-31` is January. A time is taken as it
        is: `from` included, `to` excluded."""
        span = cls(
            start=None if start is None else _moment(start, "from"),
            end=None if end is None else _moment(end, "to", day_end=True),
        )
        if span.start is not None and span.end is not None and span.end <= span.start:
            raise BadRange(f"`to` ({end}) is not after `from` ({start}): the range is empty")
        return span

    @property
    def bounded(self) -> bool:
        return self.start is not None or self.end is not None


def _moment(text: str, name: str, *, day_end: bool = False) -> datetime:
    if len(text) == len("2026-01-31"):
        try:
            day = date.fromisoformat(text)
        except ValueError:
            raise BadRange(f"`{name}` is not a date (YYYY-MM-DD): {text!r}") from None
        start = datetime.combine(day, time(), UTC)
        return start + timedelta(days=1) if day_end else start
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise BadRange(f"`{name}` is not an RFC 3339 time or a date: {text!r}") from None
    if moment.tzinfo is None:
        raise BadRange(f"`{name}` needs an offset (Z or +hh:mm): {text!r}")
    return moment


def day_of(moment: datetime) -> date:
    """The UTC day a workout is counted under in the studio's per-day counts."""
    return moment.astimezone(UTC).date()


def monday_of(day: date) -> date:
    """The Monday that starts `day`'s week (weeks run Monday to Sunday, UTC)."""
    return day - timedelta(days=day.weekday())


@dataclass(frozen=True, slots=True)
class CompletedWorkouts:
    """Completed workouts by session type: the only workouts usage counts."""

    solo: int = 0
    trainer_led: int = 0
    trainer_assisted: int = 0
    group: int = 0

    @classmethod
    def from_counts(cls, counts: Mapping[SessionType, int]) -> CompletedWorkouts:
        return cls(
            solo=counts.get(SessionType.SOLO, 0),
            trainer_led=counts.get(SessionType.TRAINER_LED, 0),
            trainer_assisted=counts.get(SessionType.TRAINER_ASSISTED, 0),
            group=counts.get(SessionType.GROUP, 0),
        )

    @property
    def total(self) -> int:
        """Every kind: each share is of all of them."""
        return self.solo + self.trainer_led + self.trainer_assisted + self.group


@dataclass(frozen=True, slots=True)
class SessionUsage:
    workouts: CompletedWorkouts = field(default_factory=CompletedWorkouts)
    credits: Balance = field(default_factory=no_credits)

    @property
    def total(self) -> int:
        return self.workouts.total

    @property
    def solo(self) -> TypeUsage:
        return self._share(self.workouts.solo)

    @property
    def trainer_led(self) -> TypeUsage:
        return self._share(self.workouts.trainer_led)

    @property
    def trainer_assisted(self) -> TypeUsage:
        return self._share(self.workouts.trainer_assisted)

    @property
    def group(self) -> TypeUsage:
        return self._share(self.workouts.group)

    def _share(self, count: int) -> TypeUsage:
        # The contract carries a JSON number; one decimal survives the trip through float.
        return TypeUsage(count=count, percentage=float(percentage(count, self.total)))

    def announcement(self, user_id: int, *, as_of: datetime) -> SessionUsageUpdated:
        return SessionUsageUpdated(
            user_id=user_id,
            total=self.total,
            solo=self.solo,
            trainer_led=self.trainer_led,
            trainer_assisted=self.trainer_assisted,
            group=self.group,
            credits=self.credits,
            as_of=as_of,
        )


class UsageNotRecordable(RuleBroken):
    """An event that can never be applied to usage; the reason says why."""


class WorkoutOfAnotherClient(UsageNotRecordable):
    pass


class SessionOfAnotherKind(UsageNotRecordable):
    """A group event for a one-to-one session's id, or the reverse: booking numbers both
    from one sequence, so an id is one or the other, never both."""


class SessionKind(StrEnum):
    ONE_TO_ONE = "one-to-one"
    GROUP = "group"


class SessionStatus(StrEnum):
    """Where a booked session stands, as far as a trainer's figures go."""

    SCHEDULED = "scheduled"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    #: A one-to-one session whose client did not come (a group's no-shows are per place).
    NO_SHOW = "no_show"


#: A session in one of these took place or never will: its places no longer move.
FINISHED = frozenset({SessionStatus.COMPLETED, SessionStatus.CANCELLED, SessionStatus.NO_SHOW})


class Place(StrEnum):
    """What became of one client's place in a session."""

    BOOKED = "booked"
    LEFT = "left"
    ATTENDED = "attended"
    NO_SHOW = "no_show"


@dataclass(slots=True)
class TrainerSession:
    """What a trainer's figures need of a booked session. `kind` and `trainer_id` are None
    only for a session known so far from a SessionRescheduled alone (a history that starts
    midway); `date` is None until an event says when it takes place."""

    session_id: int
    kind: SessionKind | None = None
    trainer_id: int | None = None
    date: datetime | None = None
    status: SessionStatus = SessionStatus.SCHEDULED


@dataclass(slots=True)
class KnownWorkout:
    """What usage needs of a workout: whose it is, its type, its status."""

    user_id: int
    session_type: SessionType
    status: WorkoutStatus
    #: The event that last described it, to trace a count back to its source.
    changed_by: str
    #: When it took place, as its WorkoutLogged says (None: only status changes seen).
    date: datetime | None = None
    #: The trainer it names (trainer-led, trainer-assisted and group workouts).
    trainer_id: int | None = None

    def counted(self) -> SessionType | None:
        """The session type it counts under in usage: only completed workouts count."""
        return self.session_type if self.status == WorkoutStatus.COMPLETED else None


#: Each session type's count in a client's stored usage (`ClientUsage`, `user_usage`).
COUNT_COLUMN_OF: dict[SessionType, str] = {
    SessionType.SOLO: "solo_count",
    SessionType.TRAINER_LED: "trainer_led_count",
    SessionType.TRAINER_ASSISTED: "trainer_assisted_count",
    SessionType.GROUP: "group_count",
}
#: What is stored of a client's usage beside its id, as `ClientUsage` names it.
STORED_USAGE = (
    *COUNT_COLUMN_OF.values(),
    "credits_total",
    "credits_used",
    "credits_held",
    "credits_expired",
    "as_of",
)


@dataclass(slots=True)
class ClientUsage:
    """A client's usage as stored; `changed` once an event changed it."""

    user_id: int
    solo_count: int = 0
    trainer_led_count: int = 0
    trainer_assisted_count: int = 0
    group_count: int = 0
    credits_total: int = 0
    credits_used: int = 0
    credits_held: int = 0
    credits_expired: int = 0
    as_of: datetime | None = None
    changed: bool = False

    @property
    def usage(self) -> SessionUsage:
        # `remaining` and `available` are not stored: every Balance is total - used - expired
        # and remaining - held (the contract validates both), so they follow from the rest.
        return SessionUsage(
            workouts=CompletedWorkouts(
                solo=self.solo_count,
                trainer_led=self.trainer_led_count,
                trainer_assisted=self.trainer_assisted_count,
                group=self.group_count,
            ),
            credits=Balance(
                total=self.credits_total,
                used=self.credits_used,
                remaining=self.credits_total - self.credits_used - self.credits_expired,
                held=self.credits_held,
                expired=self.credits_expired,
            ),
        )

    def announcement(self) -> SessionUsageUpdated:
        assert self.as_of is not None  # set by the first change
        return self.usage.announcement(self.user_id, as_of=self.as_of)


@dataclass(frozen=True, slots=True)
class CreditEntry:
    """A ledger event that moved a client's credits (`ledger_entries`): `change` is what it
    did to their remaining credits, `remaining` what it left."""

    event_id: str
    user_id: int
    entry_type: str
    change: int
    remaining: int
    occurred_at: datetime
    session_id: int | None = None
    detail: str | None = None


@dataclass
class UsageBook:
    """The usage of the clients one batch names, and the workouts it names: decided in
    memory, one event after another in their order, then written by the store at once."""

    usages: dict[int, ClientUsage] = field(default_factory=dict)
    #: Each client's completed workouts by session type.
    completed: dict[int, Counter[SessionType]] = field(default_factory=dict)
    workouts: dict[uuid.UUID, KnownWorkout] = field(default_factory=dict)
    changed_workouts: set[uuid.UUID] = field(default_factory=set)
    #: How the batch moved the studio's completed workouts per UTC day and type (see
    #: `day_of`): what the store adds to `workout_days`, in the same transaction.
    day_changes: Counter[tuple[date, SessionType]] = field(default_factory=Counter)
    #: (trainer, client) pairs the batch named together.
    trainer_clients: set[tuple[int, int]] = field(default_factory=set)
    #: Each client whose usage changed, in the trace context of the event that last
    #: changed it (see `announcements`).
    changes: dict[int, tracing.Context | None] = field(default_factory=dict)
    #: The booked sessions the batch names (one-to-one and group), as stored then changed.
    sessions: dict[int, TrainerSession] = field(default_factory=dict)
    #: The places of those sessions: (session, client) -> what became of the place.
    places: dict[tuple[int, int], Place] = field(default_factory=dict)
    changed_sessions: set[int] = field(default_factory=set)
    changed_places: set[tuple[int, int]] = field(default_factory=set)
    #: The ledger entries the batch recorded (written once each, by event id).
    credit_entries: list[CreditEntry] = field(default_factory=list)

    def client(self, user_id: int) -> ClientUsage:
        """A client's usage; one the store found nothing of has none of anything."""
        usage = self.usages.get(user_id)
        if usage is None:
            usage = self.usages[user_id] = ClientUsage(user_id)
        return usage

    def record_workout(
        self,
        *,
        workout_id: uuid.UUID,
        user_id: int,
        session_type: SessionType,
        status: WorkoutStatus,
        changed_by: str,
        at: datetime,
        date: datetime | None = None,
        trainer_id: int | None = None,
    ) -> None:
        """A workout as its latest event describes it: logged, or its status changed (which
        says no `date`: the known one stays). One never seen before is taken as it is
        described, so a history that starts midway (a status change without its
        WorkoutLogged) still counts, without a date."""
        workout = self.workouts.get(workout_id)
        if workout is not None and workout.user_id != user_id:
            raise WorkoutOfAnotherClient(
                f"workout {workout_id} belongs to client {workout.user_id}, not {user_id}"
            )
        row = self.client(user_id)
        counts = self.completed.get(user_id)
        if counts is None:
            counts = self.completed[user_id] = Counter()
        if workout is not None and (before := workout.counted()) is not None:
            counts[before] -= 1
            if workout.date is not None:
                self.day_changes[day_of(workout.date), before] -= 1
        if date is None and workout is not None:
            date = workout.date
        workout = KnownWorkout(user_id, session_type, status, changed_by, date, trainer_id)
        self.workouts[workout_id] = workout
        self.changed_workouts.add(workout_id)
        if (after := workout.counted()) is not None:
            counts[after] += 1
            if workout.date is not None:
                self.day_changes[day_of(workout.date), after] += 1
        completed = CompletedWorkouts.from_counts(dict(counts))
        self._settle(row, SessionUsage(completed, row.usage.credits), at=at)

    def record_credit_balance(self, *, user_id: int, balance: Balance, at: datetime) -> None:
        """The client's balance as the ledger's latest event left it, every figure of it
        (held and expired too). One client's ledger events arrive in order (one partition),
        so the latest applied is the current one."""
        row = self.client(user_id)
        self._settle(row, SessionUsage(row.usage.workouts, balance), at=at)

    def record_credit_entry(self, entry: CreditEntry) -> None:
        """A ledger event that moved the client's credits, for their list of entries."""
        self.credit_entries.append(entry)

    def record_trainer_of(self, *, user_id: int, trainer_id: int) -> None:
        """The trainer trains the client: an event named them together."""
        self.trainer_clients.add((trainer_id, user_id))

    def _settle(self, row: ClientUsage, usage: SessionUsage, *, at: datetime) -> None:
        """Keep `usage` unless it is what the client already had; `announcements` tells it.

        `asOf` is the time of the event that changed usage, and never moves backwards: an
        older event applied after a newer one (the two topics interleave freely) leaves it
        at the newer time. It is then the same after any arrival order, and after a rebuild.
        """
        if usage == row.usage:
            return
        row.solo_count = usage.workouts.solo
        row.trainer_led_count = usage.workouts.trainer_led
        row.trainer_assisted_count = usage.workouts.trainer_assisted
        row.group_count = usage.workouts.group
        row.credits_total = usage.credits.total
        row.credits_used = usage.credits.used
        row.credits_held = usage.credits.held
        row.credits_expired = usage.credits.expired
        row.as_of = at if row.as_of is None else max(row.as_of, at)
        row.changed = True
        self.changes[row.user_id] = tracing.current()

    def announcements(self, new_id: Callable[[], str]) -> list[Announced]:
        """One per client whose usage changed: its usage as the batch left it, in the trace
        context of the event that last changed it. The usage topic is compacted (the latest
        per client is what counts), so the states a batch passed through are not worth a
        record each. Each gets a fresh id (`new_id`): the same cause can lead to different
        usages in different replays."""
        return [
            Announced(self.usages[user_id].announcement(), new_id(), context)
            for user_id, context in self.changes.items()
        ]

    # --- booked sessions, for each trainer's figures --------------------------------------
    # One session's events arrive in order (booking.sessions is keyed by session id), so the
    # latest event describes it; a place no longer moves once its session is finished, so a
    # late or re-sent join or leave cannot undo an attendance.

    def record_session(
        self,
        session_id: int,
        *,
        kind: SessionKind | None = None,
        trainer_id: int | None = None,
        date: datetime | None = None,
        status: SessionStatus | None = None,
    ) -> TrainerSession:
        """The session as the event describes it: what it leaves out stays as known."""
        known = self.sessions.get(session_id)
        session = TrainerSession(session_id) if known is None else replace(known)
        if kind is not None:
            if session.kind is not None and session.kind != kind:
                raise SessionOfAnotherKind(
                    f"session {session_id} is a {session.kind} session here, not {kind}"
                )
            session.kind = kind
        if trainer_id is not None:
            session.trainer_id = trainer_id
        if date is not None:
            session.date = date
        if status is not None:
            session.status = status
        if session != known:
            self.sessions[session_id] = session
            self.changed_sessions.add(session_id)
        return session

    def record_place(self, session: TrainerSession, user_id: int, place: Place) -> None:
        """A client's place in `session`: joined or left only while the session is open;
        attended or not shown as its completion says."""
        if place in (Place.BOOKED, Place.LEFT) and session.status in FINISHED:
            return
        key = (session.session_id, user_id)
        if self.places.get(key) != place:
            self.places[key] = place
            self.changed_places.add(key)
