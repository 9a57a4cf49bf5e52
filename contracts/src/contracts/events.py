"""Payload models (`data`) of every event in the contract.

JSON is camelCase; Python attributes are snake_case. Unknown fields are ignored so that newer
producers never break older consumers, and every model is immutable once parsed.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any, ClassVar, Literal, Self
from uuid import UUID

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveInt,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import core_schema

#: The largest id any consumer can store: a signed 64-bit integer (PostgreSQL's bigint,
#: Java's long). A larger one names nothing real, and is refused where records are parsed.
MAX_ID = 2**63 - 1

#: Integer ids of clients, trainers and sessions (database serials, so never zero or below).
Id = Annotated[int, Field(gt=0, le=MAX_ID)]
#: A session id, made as `contracts.session_ids` says so that producers never collide.
SessionId = Annotated[
    int,
    Field(
        gt=0,
        le=MAX_ID,
        description="producer << 40 | serial (docs/publishing.md, contracts.session_ids): "
        "booking's API books ids 1 to 2^40-1 (producer 0); another producer books only in the "
        "block of the producer number it was given, so no two producers ever book one id.",
    ),
]

#: The moments an event may name: any a studio could mean, and far enough inside what
#: Python and PostgreSQL can hold that every offset converts to UTC, and a validity, a grace
#: or a cancellation window can be added or taken away, without overflowing.
EARLIEST_MOMENT = datetime(1900, 1, 1, tzinfo=UTC)
LATEST_MOMENT = datetime(9000, 1, 1, tzinfo=UTC)


def within_time_range(value: datetime) -> datetime:
    """Refuse a moment outside `EARLIEST_MOMENT` … `LATEST_MOMENT` (in UTC)."""
    try:
        in_utc = value.astimezone(UTC)
    except OverflowError:
        in_utc = None
    if in_utc is None or not EARLIEST_MOMENT <= in_utc < LATEST_MOMENT:
        raise ValueError(
            f"must lie between {EARLIEST_MOMENT.year} and {LATEST_MOMENT.year - 1} (UTC)"
        )
    return value


#: A moment with its offset, within the range every consumer can hold.
Moment = Annotated[AwareDatetime, AfterValidator(within_time_range)]

# Limits: the services' APIs take no more, and no event may carry more, so that nothing a
# producer sends can overflow a column or bloat what consumers remember of it.
#: The largest count a 32-bit column holds (credit balances, minutes, sets).
MAX_INT32 = 2**31 - 1
#: The most session credits one purchase or one grant gives (a staff grant's cap too).
MAX_CREDITS_PER_GRANT = 1000
MAX_TITLE_LENGTH = 200
MAX_NAME_LENGTH = 200
MAX_LOCATION_LENGTH = 200
MAX_NOTES_LENGTH = 2000
MAX_REASON_LENGTH = 500
#: Why a deduction was refused: written by credits, naming the session and both parties.
MAX_REJECTION_LENGTH = 1000
#: Purchase ids, package names, event ids named in `causedBy`.
MAX_KEY_LENGTH = 200
MAX_EXERCISES = 100
MAX_SETS_PER_EXERCISE = 50
MAX_REPS = 1000
#: In the client's own unit (kg or lb); the heaviest lifts on record stay well below.
MAX_WEIGHT = 2000.0
MAX_WORKOUT_MINUTES = 24 * 60
#: The heaviest total a workout can lift: every set of every exercise at `MAX_WEIGHT`.
MAX_TOTAL_WEIGHT = MAX_EXERCISES * MAX_SETS_PER_EXERCISE * MAX_REPS * MAX_WEIGHT
MAX_INTENSITY = 10


def storable_text(value: str) -> str:
    """PostgreSQL's text holds neither NUL nor half of a surrogate pair: refused at the door
    rather than failing on the insert."""
    if "\x00" in value:
        raise ValueError("contains a NUL character, which text cannot hold")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("contains a lone surrogate, which is not Unicode text") from None
    return value


class _Storable:
    """Marks text as storable (`storable_text`), after any length constraints before it;
    the JSON Schema says so to producers that validate with it."""

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.no_info_after_validator_function(storable_text, handler(source))

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        json_schema = handler(schema)
        json_schema["pattern"] = "^[^\\u0000]*$"
        return json_schema


#: Put after a text's length constraints: `Annotated[str, Field(max_length=9), STORABLE]`.
STORABLE = _Storable()
#: Text any service can store: no NUL, no lone surrogate.
StorableText = Annotated[str, STORABLE]
Title = Annotated[str, Field(min_length=1, max_length=MAX_TITLE_LENGTH), STORABLE]
Name = Annotated[str, Field(min_length=1, max_length=MAX_NAME_LENGTH), STORABLE]
Reason = Annotated[str, Field(max_length=MAX_REASON_LENGTH), STORABLE]
Key = Annotated[str, Field(min_length=1, max_length=MAX_KEY_LENGTH), STORABLE]
#: A session's length in minutes.
Minutes = Annotated[PositiveInt, Field(le=MAX_INT32)]
Location = Annotated[str, Field(max_length=MAX_LOCATION_LENGTH), STORABLE]
Notes = Annotated[str, Field(max_length=MAX_NOTES_LENGTH), STORABLE]


class ContractModel(BaseModel):
    """Base of every JSON object of the contract."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="ignore",
        frozen=True,
    )

    def to_json_dict(self) -> dict[str, Any]:
        """The object as it travels: camelCase keys, JSON-ready values."""
        return self.model_dump(mode="json", by_alias=True)


class EventPayload(ContractModel):
    """The `data` of one event type. Subclasses name their type and current payload version."""

    event_type: ClassVar[str]
    data_version: ClassVar[str] = "1"
    #: `from version -> (to version, function)`: each older version's data brought to the
    #: next version's shape (a function raises ValueError for what the older version could
    #: not say). Consumers then see one shape.
    upcasters: ClassVar[dict[str, tuple[str, Callable[[dict[str, Any]], dict[str, Any]]]]] = {}

    @property
    def wire_version(self) -> str:
        """The `dataversion` it is published with: the oldest version that can carry it, so
        that a consumer of an older version goes on reading what it understands
        (docs/versioning.md)."""
        return self.data_version


class SessionType(StrEnum):
    SOLO = "solo"
    TRAINER_LED = "trainer-led"
    #: The trainer provides a plan (`planId`), the client executes it alone: never charged.
    TRAINER_ASSISTED = "trainer-assisted"
    #: One session of a group with one trainer: each attending client charged once.
    GROUP = "group"


#: The session types of `WorkoutLogged` and `WorkoutStatusChanged` version 1; the others came
#: with version 2.
VERSION_1_SESSION_TYPES = frozenset({SessionType.SOLO, SessionType.TRAINER_LED})
#: Session types that name a booked session (`sessionId`) and are charged a credit.
BOOKED_SESSION_TYPES = frozenset({SessionType.TRAINER_LED, SessionType.GROUP})


class WorkoutStatus(StrEnum):
    PLANNED = "planned"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    SKIPPED = "skipped"
    CANCELLED = "cancelled"


Count = Annotated[NonNegativeInt, Field(le=MAX_INT32)]
SignedCount = Annotated[int, Field(ge=-MAX_INT32, le=MAX_INT32)]


class Balance(ContractModel):
    """A client's session credits. `remaining` may go below zero: a delivered session is
    always recorded, even when the package is used up. `held` credits are reserved by
    sessions booked and not yet delivered; `available` is what a new booking may use.
    Balances from before holds and expiry carry neither: both read as 0."""

    total: SignedCount
    used: Count
    remaining: SignedCount
    held: Count = 0
    expired: Count = 0
    #: remaining - held; filled in when absent (see `_available_by_default`).
    available: SignedCount = 0

    @model_validator(mode="before")
    @classmethod
    def _available_by_default(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("available") is None:
            remaining, held = data.get("remaining"), data.get("held") or 0
            if isinstance(remaining, int) and isinstance(held, int):
                return {**data, "available": remaining - held}
        return data

    @model_validator(mode="after")
    def _adds_up(self) -> Self:
        if self.total - self.used - self.expired != self.remaining:
            raise ValueError("remaining must equal total - used - expired")
        if self.remaining - self.held != self.available:
            raise ValueError("available must equal remaining - held")
        return self


# --- booking.sessions -------------------------------------------------------------------


#: The longest late-cancellation window a studio may set: four weeks.
MAX_LATE_CANCEL_HOURS = 4 * 7 * 24


class CancellationPolicy(ContractModel):
    """A studio's late-cancel and no-show policy, stamped on each booking: a session is judged
    by the policy in force when it was booked, whatever the policy is later. A booking
    without one forfeits nothing (the default)."""

    #: A cancellation this many hours or fewer before the session forfeits its credit.
    late_cancel_hours: Annotated[NonNegativeInt, Field(le=MAX_LATE_CANCEL_HOURS)] = 0
    #: Whether a session the client missed (no-show) forfeits its credit.
    no_show_forfeits: bool = False

    @property
    def forfeits_anything(self) -> bool:
        return self.late_cancel_hours > 0 or self.no_show_forfeits


class SessionBooked(EventPayload):
    event_type: ClassVar[str] = "SessionBooked"

    session_id: SessionId
    user_id: Id
    trainer_id: Id
    session_date: Moment
    duration: Minutes = 60
    location: Location | None = None
    notes: Notes | None = None
    policy: CancellationPolicy | None = None


class SessionRescheduled(EventPayload):
    event_type: ClassVar[str] = "SessionRescheduled"

    session_id: SessionId
    session_date: Moment


class SessionStatusEvent(EventPayload):
    """Shape shared by the events that move a session along its lifecycle."""

    session_id: SessionId
    user_id: Id
    trainer_id: Id
    at: Moment
    reason: Reason | None = None


class SessionStarted(SessionStatusEvent):
    event_type: ClassVar[str] = "SessionStarted"


class SessionCompleted(SessionStatusEvent):
    event_type: ClassVar[str] = "SessionCompleted"


class SessionCancelled(SessionStatusEvent):
    event_type: ClassVar[str] = "SessionCancelled"


class SessionNoShow(SessionStatusEvent):
    event_type: ClassVar[str] = "SessionNoShow"


#: The most clients one group session may take.
MAX_GROUP_SIZE = 100
GroupSize = Annotated[PositiveInt, Field(le=MAX_GROUP_SIZE)]
Participants = Annotated[list[Id], Field(max_length=MAX_GROUP_SIZE)]


class GroupSessionScheduled(EventPayload):
    """A group session with one trainer and room for `capacity` clients, who join it one by
    one (`ParticipantJoined`). It shares the session ids of one-to-one sessions; its
    `SessionRescheduled` is the same event as theirs."""

    event_type: ClassVar[str] = "GroupSessionScheduled"

    session_id: SessionId
    trainer_id: Id
    session_date: Moment
    capacity: GroupSize
    duration: Minutes = 60
    location: Location | None = None
    notes: Notes | None = None
    policy: CancellationPolicy | None = None


class ParticipantJoined(EventPayload):
    """A client took a place in a group session: to a ledger, a booking of that place."""

    event_type: ClassVar[str] = "ParticipantJoined"

    session_id: SessionId
    user_id: Id
    trainer_id: Id
    session_date: Moment
    at: Moment
    #: The group session's policy, so that the place is judged as booked.
    policy: CancellationPolicy | None = None


class ParticipantLeft(EventPayload):
    """A client gave up their place before the session: to a ledger, a cancellation of that
    place (late under the policy, it forfeits)."""

    event_type: ClassVar[str] = "ParticipantLeft"

    session_id: SessionId
    user_id: Id
    trainer_id: Id
    at: Moment
    reason: Reason | None = None


class GroupSessionCompleted(EventPayload):
    """The group session took place: each participant either attended (charged once) or did
    not show (a no-show of that place). Every participant is in exactly one of the lists."""

    event_type: ClassVar[str] = "GroupSessionCompleted"

    session_id: SessionId
    trainer_id: Id
    at: Moment
    attended: Participants = Field(default_factory=list)
    no_shows: Participants = Field(default_factory=list)

    @model_validator(mode="after")
    def _each_participant_once(self) -> Self:
        both = set(self.attended) & set(self.no_shows)
        if both:
            raise ValueError(f"clients {sorted(both)} both attended and did not show")
        if len(set(self.attended)) != len(self.attended) or len(set(self.no_shows)) != len(
            self.no_shows
        ):
            raise ValueError("a client is named twice")
        return self


class GroupSessionCancelled(EventPayload):
    """The whole group session is called off by the studio: every place is released and
    nothing is forfeited."""

    event_type: ClassVar[str] = "GroupSessionCancelled"

    session_id: SessionId
    trainer_id: Id
    at: Moment
    reason: Reason | None = None


# --- workouts.workout-sessions ----------------------------------------------------------


class ExerciseSet(ContractModel):
    reps: Annotated[NonNegativeInt, Field(le=MAX_REPS)]
    weight: Annotated[NonNegativeFloat, Field(le=MAX_WEIGHT)] | None = None


class Exercise(ContractModel):
    name: Name
    sets: Annotated[list[ExerciseSet], Field(max_length=MAX_SETS_PER_EXERCISE)] = Field(
        default_factory=list
    )


#: What each session type names beside the client (JSON names), and what it must not.
SESSION_LINK_FIELDS: dict[SessionType, tuple[frozenset[str], frozenset[str]]] = {
    SessionType.SOLO: (frozenset(), frozenset({"sessionId", "trainerId", "planId", "groupSize"})),
    SessionType.TRAINER_LED: (
        frozenset({"sessionId", "trainerId"}),
        frozenset({"planId", "groupSize"}),
    ),
    SessionType.TRAINER_ASSISTED: (
        frozenset({"trainerId", "planId"}),
        frozenset({"sessionId", "groupSize"}),
    ),
    SessionType.GROUP: (frozenset({"sessionId", "trainerId"}), frozenset({"planId"})),
}


def _session_link_schema() -> dict[str, Any]:
    """The session-type rule for producers that validate with the exported JSON Schema."""
    rules = []
    for kind, (required, absent) in SESSION_LINK_FIELDS.items():
        condition: dict[str, Any] = {"properties": {"sessionType": {"const": kind.value}}}
        if kind is SessionType.SOLO:
            condition = {"anyOf": [{"not": {"required": ["sessionType"]}}, condition]}
        else:
            condition["required"] = ["sessionType"]
        rules.append(
            {
                "if": condition,
                "then": {
                    "required": sorted(required),
                    "properties": {
                        **{name: {"not": {"type": "null"}} for name in sorted(required)},
                        **{name: {"type": "null"} for name in sorted(absent)},
                    },
                },
            }
        )
    return {"allOf": rules}


def _upcast_session_link_v1(data: dict[str, Any]) -> dict[str, Any]:
    """Version 1 knew only solo and trainer-led workouts; its shape is version 2's."""
    session_type = data.get("sessionType")
    if session_type is not None and session_type not in VERSION_1_SESSION_TYPES:
        raise ValueError(
            f"sessionType {session_type!r} needs dataversion 2 (version 1 has only "
            f"{', '.join(sorted(VERSION_1_SESSION_TYPES))})"
        )
    return data


class SessionLink(EventPayload):
    """The session-type rule shared by workout events (`SESSION_LINK_FIELDS`): a trainer-led
    or group workout names its booked session and trainer; a trainer-assisted one its trainer
    and plan; a solo one none of them. Producers from before session types send no
    `sessionType`, and their workouts are solo. Version 2 added trainer-assisted and group."""

    model_config = ConfigDict(json_schema_extra=_session_link_schema())

    data_version: ClassVar[str] = "2"
    #: Upcasters from each older version (see `contracts.envelope.UPCASTERS`).
    upcasters: ClassVar[dict[str, tuple[str, Callable[[dict[str, Any]], dict[str, Any]]]]] = {
        "1": ("2", _upcast_session_link_v1)
    }

    session_type: SessionType = SessionType.SOLO
    session_id: SessionId | None = None
    trainer_id: Id | None = None
    #: The trainer's plan a trainer-assisted workout follows (the plans' own id, as text).
    plan_id: Key | None = None
    #: How many clients the group session had, as the logger saw it.
    group_size: GroupSize | None = None

    @property
    def wire_version(self) -> str:
        return "1" if self.session_type in VERSION_1_SESSION_TYPES else self.data_version

    @property
    def charged(self) -> bool:
        """Whether its session type uses a credit (once per session and client)."""
        return self.session_type in BOOKED_SESSION_TYPES

    @field_validator("session_type", mode="before")
    @classmethod
    def _absent_type_is_solo(cls, value: object) -> object:
        if value is None:
            return SessionType.SOLO
        if isinstance(value, str) and value not in SessionType._value2member_map_:
            known = ", ".join(kind.value for kind in SessionType)
            raise ValueError(f"unknown session type {value[:50]!r} (known: {known})")
        return value

    @model_validator(mode="after")
    def _session_link_matches_type(self) -> Self:
        required, absent = SESSION_LINK_FIELDS[self.session_type]
        given = {
            name
            for name, value in (
                ("sessionId", self.session_id),
                ("trainerId", self.trainer_id),
                ("planId", self.plan_id),
                ("groupSize", self.group_size),
            )
            if value is not None
        }
        if missing := sorted(required - given):
            raise ValueError(f"a {self.session_type} workout requires {' and '.join(missing)}")
        if extra := sorted(absent & given):
            raise ValueError(f"a {self.session_type} workout has no {' and no '.join(extra)}")
        return self


class WorkoutLogged(SessionLink):
    event_type: ClassVar[str] = "WorkoutLogged"

    workout_id: UUID
    user_id: Id
    title: Title
    date: Moment
    duration: Annotated[NonNegativeInt, Field(le=MAX_WORKOUT_MINUTES)] | None = None
    intensity: Annotated[NonNegativeInt, Field(le=MAX_INTENSITY)] | None = None
    status: WorkoutStatus
    exercises: Annotated[list[Exercise], Field(max_length=MAX_EXERCISES)] = Field(
        default_factory=list
    )
    #: At most every set of every exercise at the heaviest weight: a finite number, since
    #: JSON has no infinity to give it back as.
    total_weight: Annotated[NonNegativeFloat, Field(le=MAX_TOTAL_WEIGHT)] = 0.0
    total_reps: Annotated[NonNegativeInt, Field(le=MAX_ID)] = 0
    total_sets: Annotated[NonNegativeInt, Field(le=MAX_INT32)] = 0
    experience_points: Annotated[NonNegativeInt, Field(le=MAX_ID)] = 0


class WorkoutStatusChanged(SessionLink):
    event_type: ClassVar[str] = "WorkoutStatusChanged"

    workout_id: UUID
    user_id: Id
    status: WorkoutStatus
    previous_status: WorkoutStatus


# --- commerce.packages ------------------------------------------------------------------


class PackageType(StrEnum):
    #: N trainer-led sessions (the default, and every package before types).
    SESSIONS = "sessions"
    #: N trainer-led sessions and an allowance of M solo workouts.
    HYBRID = "hybrid"
    #: Unlimited solo logging, no trainer-led sessions.
    SOLO_ONLY = "solo-only"
    #: Trainer-led sessions without a count while valid, with an optional cap per week.
    UNLIMITED = "unlimited"


#: Package types whose trainer-led sessions are counted (and granted as credits).
COUNTED_PACKAGE_TYPES = frozenset({PackageType.SESSIONS, PackageType.HYBRID})
#: The longest validity a package may be sold with, in days: ten years.
MAX_VALID_DAYS = 3660


class PackageTerms(ContractModel):
    """What a package gives and until when; shared by the purchase and the ledger's grant."""

    package_type: PackageType = PackageType.SESSIONS
    sessions: Annotated[NonNegativeInt, Field(le=MAX_CREDITS_PER_GRANT)] = 0
    solo_workouts: Annotated[PositiveInt, Field(le=MAX_CREDITS_PER_GRANT)] | None = None
    weekly_cap: Annotated[PositiveInt, Field(le=7 * 24)] | None = None
    #: The end of the package's validity (absent: it never expires).
    valid_until: Moment | None = None

    @field_validator("package_type", mode="before")
    @classmethod
    def _absent_type_is_sessions(cls, value: object) -> object:
        return PackageType.SESSIONS if value is None else value

    @model_validator(mode="after")
    def _terms_fit_type(self) -> Self:
        kind = self.package_type
        if kind in COUNTED_PACKAGE_TYPES and self.sessions == 0:
            raise ValueError(f"a {kind} package requires sessions of at least 1")
        if kind not in COUNTED_PACKAGE_TYPES and self.sessions:
            raise ValueError(f"a {kind} package has no count of sessions")
        if kind is PackageType.HYBRID and self.solo_workouts is None:
            raise ValueError("a hybrid package requires soloWorkouts")
        if kind is not PackageType.HYBRID and self.solo_workouts is not None:
            raise ValueError("only a hybrid package has soloWorkouts")
        if kind is not PackageType.UNLIMITED and self.weekly_cap is not None:
            raise ValueError("only an unlimited package has a weeklyCap")
        return self


class PackagePurchased(PackageTerms, EventPayload):
    event_type: ClassVar[str] = "PackagePurchased"

    purchase_id: Key
    user_id: Id
    package_name: Annotated[str, Field(max_length=MAX_NAME_LENGTH), STORABLE] | None = None
    purchased_at: Moment
    #: Validity in days from `purchasedAt`, for shops that sell it so (not with `validUntil`).
    valid_for_days: Annotated[PositiveInt, Field(le=MAX_VALID_DAYS)] | None = None

    @model_validator(mode="after")
    def _one_validity(self) -> Self:
        if self.valid_for_days is not None and self.valid_until is not None:
            raise ValueError("give validUntil or validForDays, not both")
        if self.valid_until is not None and self.valid_until <= self.purchased_at:
            raise ValueError("validUntil must come after purchasedAt")
        return self

    def terms(self) -> PackageTerms:
        """The package as the ledger keeps it: a validity in days becomes its end."""
        valid_until = self.valid_until
        if self.valid_for_days is not None:
            valid_until = self.purchased_at + timedelta(days=self.valid_for_days)
        return PackageTerms(
            package_type=self.package_type,
            sessions=self.sessions,
            solo_workouts=self.solo_workouts,
            weekly_cap=self.weekly_cap,
            valid_until=valid_until,
        )


# --- credits.ledger ---------------------------------------------------------------------


class GrantedPackage(PackageTerms):
    """The package a grant opens, as the ledger keeps it (see `PackageTerms`)."""

    #: The id deductions name it by: the grant's event id.
    package_id: UUID
    purchased_at: Moment


class CreditsGranted(EventPayload):
    event_type: ClassVar[str] = "CreditsGranted"

    user_id: Id
    #: Credits of counted sessions (0 for an unlimited or solo-only package).
    amount: Annotated[NonNegativeInt, Field(le=MAX_CREDITS_PER_GRANT)]
    purchase_id: Key | None = None
    reason: Reason | None = None
    balance: Balance
    #: The id of the event that caused it (absent for a grant by staff).
    caused_by: Key | None = None
    #: The package opened (absent before package types: then N sessions, never expiring).
    package: GrantedPackage | None = None


#: Why a session's credit was deducted: a trainer-led workout was logged for it, or the
#: session was reported completed (whichever comes first; the other then changes nothing).
DeductionCause = Literal["workout-logged", "session-completed"]
WORKOUT_LOGGED: DeductionCause = "workout-logged"
SESSION_COMPLETED: DeductionCause = "session-completed"


class SessionCreditDeducted(EventPayload):
    event_type: ClassVar[str] = "SessionCreditDeducted"

    user_id: Id
    session_id: SessionId
    trainer_id: Id
    workout_id: UUID | None = None
    cause: DeductionCause
    balance: Balance
    #: The id of the event that caused it: the workout's event, or the completion's.
    caused_by: Key | None = None
    #: The package that paid (absent: none could, and the balance went below what it holds).
    package_id: UUID | None = None
    #: When the session was delivered, as the ledger judged it (absent before packages).
    delivered_at: Moment | None = None


class SessionCreditRestored(EventPayload):
    event_type: ClassVar[str] = "SessionCreditRestored"

    user_id: Id
    session_id: SessionId
    reason: Reason
    balance: Balance
    #: The id of the event that caused it: the session's cancellation or no-show, or staff's
    #: waiver of a forfeit.
    caused_by: Key | None = None
    #: The package the credit goes back to (the one its deduction or forfeit named).
    package_id: UUID | None = None
    #: What is given back: a deduction (the default) or a forfeit waived by staff.
    restores: Literal["deduction", "forfeit"] = "deduction"


#: Why a session's credit was forfeited under the policy it was booked with.
ForfeitCause = Literal["late-cancel", "no-show"]
LATE_CANCEL: ForfeitCause = "late-cancel"
NO_SHOW: ForfeitCause = "no-show"


class SessionCreditForfeited(EventPayload):
    """A session cancelled inside its late-cancel window, or missed, under a policy that
    forfeits its credit: the hold becomes a charge, named as such."""

    event_type: ClassVar[str] = "SessionCreditForfeited"

    user_id: Id
    session_id: SessionId
    trainer_id: Id
    cause: ForfeitCause
    policy: CancellationPolicy
    package_id: UUID | None = None
    balance: Balance
    caused_by: Key
    #: The day the session was booked for, when known: the day it is paid by.
    session_date: Moment | None = None


class CreditsExpired(EventPayload):
    """What was left of a package when its validity ended (and its grace with it)."""

    event_type: ClassVar[str] = "CreditsExpired"

    user_id: Id
    package_id: UUID
    amount: Annotated[PositiveInt, Field(le=MAX_CREDITS_PER_GRANT)]
    valid_until: Moment
    balance: Balance
    #: A credit restored to a package after it expired expires at once: the restoration.
    caused_by: Key | None = None


class SoloWorkoutCounted(EventPayload):
    """A completed solo workout counted against a hybrid package's solo allowance. Never
    refused: past the allowance it still counts, and `over` says by how many."""

    event_type: ClassVar[str] = "SoloWorkoutCounted"

    user_id: Id
    workout_id: UUID
    package_id: UUID
    solo_used: Count
    solo_allowance: Count
    over: Count
    caused_by: Key


class CreditsRunningLow(EventPayload):
    """Heads-up: a client's available credits fell to the threshold or below; once per
    crossing (they must rise above it again before the next)."""

    event_type: ClassVar[str] = "CreditsRunningLow"

    user_id: Id
    threshold: Count
    balance: Balance
    caused_by: Key


class PackageExpiringSoon(EventPayload):
    """Heads-up: a package with credits left expires within the notice period; once per
    package."""

    event_type: ClassVar[str] = "PackageExpiringSoon"

    user_id: Id
    package_id: UUID
    valid_until: Moment
    #: Counted sessions left in it (0 for an unlimited package).
    sessions_left: Count


class CreditDeductionRejected(EventPayload):
    event_type: ClassVar[str] = "CreditDeductionRejected"

    user_id: Id
    session_id: SessionId
    workout_id: UUID | None = None
    reason: Annotated[str, Field(max_length=MAX_REJECTION_LENGTH), STORABLE]


# --- analytics.session-usage ------------------------------------------------------------


class TypeUsage(ContractModel):
    count: NonNegativeInt
    percentage: Annotated[float, Field(ge=0, le=100)]


#: A kind with no workouts (and what a usage from before the kind reads as).
NO_USAGE = TypeUsage(count=0, percentage=0)


class SessionUsageUpdated(EventPayload):
    event_type: ClassVar[str] = "SessionUsageUpdated"

    user_id: Id
    total: NonNegativeInt
    solo: TypeUsage
    trainer_led: TypeUsage
    trainer_assisted: TypeUsage = NO_USAGE
    group: TypeUsage = NO_USAGE
    credits: Balance
    as_of: Moment


#: Every event type of the contract, by its CloudEvents `type`.
EVENT_TYPES: dict[str, type[EventPayload]] = {
    model.event_type: model
    for model in (
        SessionBooked,
        SessionRescheduled,
        SessionStarted,
        SessionCompleted,
        SessionCancelled,
        SessionNoShow,
        GroupSessionScheduled,
        ParticipantJoined,
        ParticipantLeft,
        GroupSessionCompleted,
        GroupSessionCancelled,
        WorkoutLogged,
        WorkoutStatusChanged,
        PackagePurchased,
        CreditsGranted,
        SessionCreditDeducted,
        SessionCreditRestored,
        CreditDeductionRejected,
        SessionCreditForfeited,
        CreditsExpired,
        SoloWorkoutCounted,
        CreditsRunningLow,
        PackageExpiringSoon,
        SessionUsageUpdated,
    )
}
