"""The CloudEvents 1.0 envelope (structured mode): build, encode, parse and validate.

Parsing is strict about what the contract promises and lenient about the rest: unknown
attributes and unknown payload fields are ignored, and `dataversion` picks the payload
version, with older versions brought up to date by upcasters.
"""

from __future__ import annotations

import contextlib
import functools
import json
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from contracts.events import EVENT_TYPES, MAX_KEY_LENGTH, STORABLE, EventPayload, Moment
from contracts.topics import Topic, topic_for_event

CONTENT_TYPE = "application/cloudevents+json"
#: A producer's name (`/swanstudios/credits`, `/platform/kiosk`): a URI reference.
MAX_SOURCE_LENGTH = 500
CONTENT_TYPE_HEADER = "content-type"

P = TypeVar("P", bound=EventPayload)

#: Upcasters turn the `data` of an older payload version into the next version's shape:
#: `(event type, from version) -> (to version, function)`, from each model's `upcasters`.
Upcaster = Callable[[dict[str, Any]], dict[str, Any]]
UPCASTERS: dict[tuple[str, str], tuple[str, Upcaster]] = {
    (model.event_type, version): step
    for model in EVENT_TYPES.values()
    for version, step in model.upcasters.items()
}


class CloudEvent(BaseModel):
    """The envelope. `data` stays raw here; `parse_event` validates it against its type."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    specversion: Literal["1.0"]
    #: Bounded: every consumer remembers it, for good, in `processed_events`.
    id: Annotated[str, Field(min_length=1, max_length=MAX_KEY_LENGTH), STORABLE]
    source: Annotated[str, Field(min_length=1, max_length=MAX_SOURCE_LENGTH), STORABLE]
    type: Annotated[str, Field(min_length=1, max_length=MAX_KEY_LENGTH)]
    time: Moment | None = None
    subject: Annotated[str, Field(max_length=MAX_KEY_LENGTH)] | None = None
    datacontenttype: Annotated[str, Field(max_length=MAX_KEY_LENGTH)] | None = "application/json"
    dataversion: Annotated[str, Field(max_length=MAX_KEY_LENGTH)] = "1"
    data: dict[str, Any]

    @field_validator("datacontenttype")
    @classmethod
    def _data_is_json(cls, value: str | None) -> str | None:
        """`data` is read as JSON: an event saying it is anything else is not one to read."""
        if value is not None and not is_json_media_type(value):
            raise ValueError(f"{value[:50]!r} is not a JSON media type")
        return value


def is_json_media_type(media_type: str) -> bool:
    """`application/json` or a `+json` type (`application/ld+json`), parameters aside."""
    essence = media_type.split(";", 1)[0].strip().lower()
    return essence == "application/json" or (
        essence.startswith("application/") and essence.endswith("+json")
    )


@dataclass(frozen=True, slots=True)
class Event(Generic[P]):
    """A parsed, validated event: its envelope and its typed payload."""

    envelope: CloudEvent
    payload: P

    @property
    def id(self) -> str:
        return self.envelope.id

    @property
    def type(self) -> str:
        return self.envelope.type

    @property
    def occurred_at(self) -> datetime:
        """When the change happened: the event's own `time`; the moment it is read when
        the producer left `time` out (the attribute is optional in CloudEvents)."""
        return self.envelope.time or datetime.now(UTC)


class InvalidEvent(ValueError):
    """A record that can never be processed. `reason` is what the dead-letter topic records."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class NotJson(InvalidEvent):
    pass


class NotCloudEvent(InvalidEvent):
    pass


class UnknownEventType(InvalidEvent):
    pass


class UnsupportedDataVersion(InvalidEvent):
    pass


class InvalidPayload(InvalidEvent):
    pass


def build_event(
    payload: EventPayload,
    *,
    source: str,
    event_id: str | None = None,
    time: datetime | None = None,
    subject: str | None = None,
) -> CloudEvent:
    """Wrap a payload in its envelope. Pass `event_id` when the same event may be built again
    (a retry must carry the same id, or consumers cannot tell it is a duplicate)."""
    return CloudEvent(
        specversion="1.0",
        id=event_id or str(uuid.uuid4()),
        source=source,
        type=payload.event_type,
        time=time or datetime.now(UTC),
        subject=subject,
        datacontenttype="application/json",
        dataversion=payload.wire_version,
        data=payload.to_json_dict(),
    )


def encode(event: CloudEvent) -> bytes:
    """The record value: the envelope as compact UTF-8 JSON."""
    return event.model_dump_json(exclude_none=True).encode()


def topic_of(payload: EventPayload) -> Topic:
    return topic_for_event(payload.event_type)


def partition_key(payload: EventPayload) -> bytes:
    """The record key: the topic's key field of the payload, as a UTF-8 string."""
    key_field = topic_of(payload).key
    value = getattr(payload, _attribute_named(type(payload), key_field), None)
    if value is None:
        raise ValueError(f"{payload.event_type} has no {key_field} to key its record by")
    # Key fields are integers and UUIDs: `str` writes them as JSON does.
    return str(value).encode()


@functools.cache
def _attribute_named(model: type[EventPayload], json_name: str) -> str:
    """The attribute behind a payload's JSON field (camelCase outside, snake_case inside)."""
    for name, field in model.model_fields.items():
        if json_name in (name, field.alias):
            return name
    return json_name


def record_headers() -> list[tuple[str, bytes]]:
    return [(CONTENT_TYPE_HEADER, CONTENT_TYPE.encode())]


def parse_envelope(raw: bytes | str | Mapping[str, Any]) -> CloudEvent:
    """Check that a record value is a CloudEvent, without looking inside `data`."""
    if isinstance(raw, Mapping):
        document: object = raw
    else:
        # Parsed and validated in one pass (twice as fast); what fails it goes the long way
        # below, which names the reason.
        with contextlib.suppress(ValidationError):
            return CloudEvent.model_validate_json(raw)
        try:
            document = json.loads(raw)
        except RecursionError:
            raise NotJson("not JSON this parser can read: nested too deeply") from None
        except ValueError as error:
            # Undecodable bytes, bad syntax, or a number of more digits than Python converts.
            raise NotJson(f"not JSON: {error}") from error
    if not isinstance(document, dict):
        raise NotCloudEvent(f"not a CloudEvent: a JSON {type(document).__name__}, not an object")
    try:
        return CloudEvent.model_validate(document)
    except ValidationError as error:
        raise NotCloudEvent(f"not a CloudEvent: {_describe(error)}") from error


def parse_payload(envelope: CloudEvent, model: type[P]) -> Event[P]:
    """Validate the envelope's `data` as `model`, upcasting older payload versions first."""
    data = _upcast(envelope.type, envelope.dataversion, model.data_version, envelope.data)
    try:
        payload = model.model_validate(data)
    except ValidationError as error:
        raise InvalidPayload(f"invalid {envelope.type} payload: {_describe(error)}") from error
    return Event(envelope=envelope, payload=payload)


def parse_event(raw: bytes | str | Mapping[str, Any]) -> Event[EventPayload]:
    """Parse and fully validate one record value of any event type of the contract."""
    envelope = parse_envelope(raw)
    model = EVENT_TYPES.get(envelope.type)
    if model is None:
        raise UnknownEventType(f"unknown event type {envelope.type!r}")
    return parse_payload(envelope, model)


def _upcast(event_type: str, version: str, target: str, data: dict[str, Any]) -> dict[str, Any]:
    seen = {version}
    while version != target:
        step = UPCASTERS.get((event_type, version))
        if step is None:
            raise UnsupportedDataVersion(
                f"{event_type} dataversion {version!r} is not supported (current is {target!r})"
            )
        version, upcast = step
        if version in seen:
            raise UnsupportedDataVersion(f"{event_type} upcasters loop at version {version!r}")
        seen.add(version)
        try:
            data = upcast(data)
        except ValueError as error:
            raise UnsupportedDataVersion(f"{event_type}: {error}") from error
    return data


def _describe(error: ValidationError) -> str:
    """A one-line reason naming each bad field, fit for a `dlq-reason` header."""
    parts = []
    for item in error.errors(include_url=False):
        location = ".".join(str(part) for part in item["loc"]) or "(root)"
        parts.append(f"{location}: {item['msg']}")
    return "; ".join(parts)
