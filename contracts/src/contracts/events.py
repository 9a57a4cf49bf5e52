"""Payload models (`data`) of every event in the contract.

JSON is camelCase; Python attributes are snake_case. Unknown fields are ignored so that newer
producers never break older consumers, and every model is immutable once parsed.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, ClassVar, Literal, Self
from uuid import UUID

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveInt,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

#: The largest id any consumer can store: a signed 64-bit integer (PostgreSQL's bigint,
#: Java's long). A larger one names nothing real, and is refused where records are parsed.
MAX_ID = 2**63 - 1

#: Integer ids of clients, trainers and sessions (database serials, so never zero or below).
Id = Annotated[int, Field(gt=0, le=MAX_ID)]


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


class SessionType(StrEnum):
    SOLO = "solo"
    TRAINER_LED = "trainer-led"


class WorkoutStatus(StrEnum):
    PLANNED = "planned"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    SKIPPED = "skipped"
    CANCELLED = "cancelled"


class Balance(ContractModel):
    """A client's session credits. `remaining` may go below zero: a delivered session is
    always recorded, even when the package is used up."""

    total: int
    used: NonNegativeInt
    remaining: int

    @model_validator(mode="after")
    def _adds_up(self) -> Self:
        if self.total - self.used != self.remaining:
            raise ValueError("remaining must equal total - used")
        return self


# --- booking.sessions -------------------------------------------------------------------


class SessionBooked(EventPayload):
    event_type: ClassVar[str] = "SessionBooked"

    session_id: Id
    user_id: Id
    trainer_id: Id
    session_date: AwareDatetime
    duration: PositiveInt = 60
    location: str | None = None
    notes: str | None = None


class SessionRescheduled(EventPayload):
    event_type: ClassVar[str] = "SessionRescheduled"

    session_id: Id
    session_date: AwareDatetime


class SessionStatusEvent(EventPayload):
    """Shape shared by the events that move a session along its lifecycle."""

    session_id: Id
    user_id: Id
    trainer_id: Id
    at: AwareDatetime
    reason: str | None = None


class SessionStarted(SessionStatusEvent):
    event_type: ClassVar[str] = "SessionStarted"


class SessionCompleted(SessionStatusEvent):
    event_type: ClassVar[str] = "SessionCompleted"


class SessionCancelled(SessionStatusEvent):
    event_type: ClassVar[str] = "SessionCancelled"


class SessionNoShow(SessionStatusEvent):
    event_type: ClassVar[str] = "SessionNoShow"


# --- workouts.workout-sessions ----------------------------------------------------------


class ExerciseSet(ContractModel):
    reps: NonNegativeInt
    weight: NonNegativeFloat | None = None


class Exercise(ContractModel):
    name: Annotated[str, Field(min_length=1)]
    sets: list[ExerciseSet] = Field(default_factory=list)


class SessionLink(EventPayload):
    """The session-type rule shared by workout events: a trainer-led workout names its
    booked session and trainer; a solo one names neither. Producers from before session
    types send no `sessionType`, and their workouts are solo."""

    model_config = ConfigDict(
        # The same rule for producers that validate with the exported JSON Schema.
        json_schema_extra={
            "if": {
                "properties": {"sessionType": {"const": "trainer-led"}},
                "required": ["sessionType"],
            },
            "then": {
                "required": ["sessionId", "trainerId"],
                "properties": {"sessionId": {"type": "integer"}, "trainerId": {"type": "integer"}},
            },
            "else": {
                "properties": {"sessionId": {"type": "null"}, "trainerId": {"type": "null"}},
            },
        },
    )

    session_type: SessionType = SessionType.SOLO
    session_id: Id | None = None
    trainer_id: Id | None = None

    @field_validator("session_type", mode="before")
    @classmethod
    def _absent_type_is_solo(cls, value: object) -> object:
        return SessionType.SOLO if value is None else value

    @model_validator(mode="after")
    def _session_link_matches_type(self) -> Self:
        if self.session_type is SessionType.TRAINER_LED:
            missing = [
                name
                for name, value in (("sessionId", self.session_id), ("trainerId", self.trainer_id))
                if value is None
            ]
            if missing:
                raise ValueError(f"a trainer-led workout requires {' and '.join(missing)}")
        elif self.session_id is not None or self.trainer_id is not None:
            raise ValueError("a solo workout has no sessionId and no trainerId")
        return self


class WorkoutLogged(SessionLink):
    event_type: ClassVar[str] = "WorkoutLogged"

    workout_id: UUID
    user_id: Id
    title: Annotated[str, Field(min_length=1, max_length=200)]
    date: AwareDatetime
    duration: NonNegativeInt | None = None
    intensity: NonNegativeInt | None = None
    status: WorkoutStatus
    exercises: list[Exercise] = Field(default_factory=list)
    total_weight: NonNegativeFloat = 0.0
    total_reps: NonNegativeInt = 0
    total_sets: NonNegativeInt = 0
    experience_points: NonNegativeInt = 0


class WorkoutStatusChanged(SessionLink):
    event_type: ClassVar[str] = "WorkoutStatusChanged"

    workout_id: UUID
    user_id: Id
    status: WorkoutStatus
    previous_status: WorkoutStatus


# --- commerce.packages ------------------------------------------------------------------


class PackagePurchased(EventPayload):
    event_type: ClassVar[str] = "PackagePurchased"

    purchase_id: Annotated[str, Field(min_length=1, max_length=200)]
    user_id: Id
    sessions: PositiveInt
    package_name: str | None = None
    purchased_at: AwareDatetime


# --- credits.ledger ---------------------------------------------------------------------


class CreditsGranted(EventPayload):
    event_type: ClassVar[str] = "CreditsGranted"

    user_id: Id
    amount: PositiveInt
    purchase_id: str | None = None
    reason: str | None = None
    balance: Balance
    #: The id of the event that caused it (absent for a grant by staff).
    caused_by: str | None = None


class SessionCreditDeducted(EventPayload):
    event_type: ClassVar[str] = "SessionCreditDeducted"

    user_id: Id
    session_id: Id
    trainer_id: Id
    workout_id: UUID | None = None
    cause: Literal["workout-logged", "session-completed"]
    balance: Balance
    #: The id of the event that caused it: the workout's event, or the completion's.
    caused_by: str | None = None


class SessionCreditRestored(EventPayload):
    event_type: ClassVar[str] = "SessionCreditRestored"

    user_id: Id
    session_id: Id
    reason: str
    balance: Balance
    #: The id of the event that caused it: the session's cancellation or no-show.
    caused_by: str | None = None


class CreditDeductionRejected(EventPayload):
    event_type: ClassVar[str] = "CreditDeductionRejected"

    user_id: Id
    session_id: Id
    workout_id: UUID | None = None
    reason: str


# --- analytics.session-usage ------------------------------------------------------------


class TypeUsage(ContractModel):
    count: NonNegativeInt
    percentage: Annotated[float, Field(ge=0, le=100)]


class SessionUsageUpdated(EventPayload):
    event_type: ClassVar[str] = "SessionUsageUpdated"

    user_id: Id
    total: NonNegativeInt
    solo: TypeUsage
    trainer_led: TypeUsage
    credits: Balance
    as_of: AwareDatetime


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
        WorkoutLogged,
        WorkoutStatusChanged,
        PackagePurchased,
        CreditsGranted,
        SessionCreditDeducted,
        SessionCreditRestored,
        CreditDeductionRejected,
        SessionUsageUpdated,
    )
}
