"""Hostile Kafka records for every input topic, drawn with Hypothesis, and what a consumer of
the contract must make of each.

A record is built from a valid CloudEvent of an event type (`TEMPLATES`) and then broken in
one way (`MUTATIONS`): bytes that are not JSON or cut short, an empty or null value, a JSON
document that is no CloudEvent, a wrong `specversion`, `dataversion` or `datacontenttype`,
an event type unknown or carried by another topic, a missing or mistyped field, text with
NUL, lone surrogates or a megabyte of characters, numbers past 64 bits, nesting too deep
for any parser, and valid events with hostile values (ids at the ends of their range, dates
at the ends of time). `draw` makes a fixed batch from a strategy: the same on every run.

`expected_outcome` says, from the contract alone, whether a consumer reading the record on
its topic must dead-letter it, must pass over it, or applies it (or refuses it by a rule of
its own, which is a dead letter too)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any, TypeVar

from aiokafka.record.default_records import DefaultRecordBatchBuilder
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from contracts.envelope import CONTENT_TYPE_HEADER, InvalidEvent, parse_envelope, parse_payload
from contracts.events import EVENT_TYPES, MAX_ID
from contracts.topics import Topic, topic_for_event

T = TypeVar("T")
#: Record headers; a header's value may be null on the wire.
Headers = tuple[tuple[str, bytes | None], ...]

#: The largest record batch the broker takes on a topic of the contract: its default
#: `message.max.bytes` (1 MiB and 12 bytes), which the contract's topics keep.
BROKER_MAX_RECORD_BYTES = 1024 * 1024 + 12
#: Stands for the event id until the corpus is put together: each record then gets one of
#: its own (Hypothesis draws the same values many times), of the same length.
EVENT_ID_PLACEHOLDER = "ffffffff-ffff-4fff-bfff-ffffffffffff"
#: A source no producer of the contract writes as.
HOSTILE_SOURCE = "/platform/fuzz"

_WHEN = "2026-02-10T10:00:00Z"
_UUID = "00000000-0000-4000-8000-000000000001"
_BALANCE = {"total": 5, "used": 1, "remaining": 4, "held": 0, "expired": 0, "available": 4}
_PACKAGE = {"packageId": _UUID, "purchasedAt": _WHEN, "sessions": 5}

#: One valid `data` of every event type of the contract (hostile ids are drawn over them).
TEMPLATES: dict[str, dict[str, Any]] = {
    "SessionBooked": {
        "sessionId": 11,
        "userId": 21,
        "trainerId": 31,
        "sessionDate": _WHEN,
        "duration": 60,
        "location": "Studio A",
        "notes": "Bring water",
        "policy": {"lateCancelHours": 24, "noShowForfeits": True},
    },
    "SessionRescheduled": {"sessionId": 11, "sessionDate": _WHEN},
    **{
        name: {"sessionId": 11, "userId": 21, "trainerId": 31, "at": _WHEN, "reason": "because"}
        for name in ("SessionStarted", "SessionCompleted", "SessionCancelled", "SessionNoShow")
    },
    "GroupSessionScheduled": {
        "sessionId": 12,
        "trainerId": 31,
        "sessionDate": _WHEN,
        "capacity": 5,
        "location": "Hall",
        "notes": "Circuits",
    },
    "ParticipantJoined": {
        "sessionId": 12,
        "userId": 21,
        "trainerId": 31,
        "sessionDate": _WHEN,
        "at": _WHEN,
    },
    "ParticipantLeft": {
        "sessionId": 12,
        "userId": 21,
        "trainerId": 31,
        "at": _WHEN,
        "reason": "ill",
    },
    "GroupSessionCompleted": {
        "sessionId": 12,
        "trainerId": 31,
        "at": _WHEN,
        "attended": [21, 22],
        "noShows": [23],
    },
    "GroupSessionCancelled": {"sessionId": 12, "trainerId": 31, "at": _WHEN, "reason": "rain"},
    "WorkoutLogged": {
        "workoutId": _UUID,
        "userId": 21,
        "sessionType": "trainer-led",
        "sessionId": 11,
        "trainerId": 31,
        "title": "Legs",
        "date": _WHEN,
        "duration": 45,
        "intensity": 7,
        "status": "completed",
        "exercises": [{"name": "Squat", "sets": [{"reps": 5, "weight": 100.0}]}],
        "totalWeight": 500.0,
        "totalReps": 5,
        "totalSets": 1,
        "experiencePoints": 10,
    },
    "WorkoutStatusChanged": {
        "workoutId": _UUID,
        "userId": 21,
        "status": "cancelled",
        "previousStatus": "completed",
    },
    "PackagePurchased": {
        "purchaseId": "order-1",
        "userId": 21,
        "packageName": "Ten sessions",
        "sessions": 10,
        "purchasedAt": _WHEN,
        "validForDays": 90,
    },
    "CreditsGranted": {
        "userId": 21,
        "amount": 5,
        "purchaseId": "order-1",
        "balance": {**_BALANCE, "used": 0, "remaining": 5, "available": 5},
        "causedBy": "event-1",
        "package": _PACKAGE,
    },
    "SessionCreditDeducted": {
        "userId": 21,
        "sessionId": 11,
        "trainerId": 31,
        "cause": "workout-logged",
        "balance": _BALANCE,
        "causedBy": "event-2",
        "packageId": _UUID,
        "deliveredAt": _WHEN,
    },
    "SessionCreditRestored": {
        "userId": 21,
        "sessionId": 11,
        "reason": "cancelled",
        "balance": _BALANCE,
        "causedBy": "event-3",
    },
    "CreditDeductionRejected": {"userId": 21, "sessionId": 11, "reason": "not delivered"},
    "SessionCreditForfeited": {
        "userId": 21,
        "sessionId": 11,
        "trainerId": 31,
        "cause": "no-show",
        "policy": {"lateCancelHours": 24, "noShowForfeits": True},
        "balance": _BALANCE,
        "causedBy": "event-4",
        "sessionDate": _WHEN,
    },
    "CreditsExpired": {
        "userId": 21,
        "packageId": _UUID,
        "amount": 1,
        "validUntil": _WHEN,
        "balance": {**_BALANCE, "used": 0, "expired": 1},
    },
    "SoloWorkoutCounted": {
        "userId": 21,
        "workoutId": _UUID,
        "packageId": _UUID,
        "soloUsed": 1,
        "soloAllowance": 4,
        "over": 0,
        "causedBy": "event-5",
    },
    "CreditsRunningLow": {
        "userId": 21,
        "threshold": 2,
        "balance": {**_BALANCE, "used": 3, "remaining": 2, "available": 2},
        "causedBy": "event-6",
    },
    "PackageExpiringSoon": {
        "userId": 21,
        "packageId": _UUID,
        "validUntil": _WHEN,
        "sessionsLeft": 3,
    },
    "SessionUsageUpdated": {
        "userId": 21,
        "total": 1,
        "solo": {"count": 1, "percentage": 100.0},
        "trainerLed": {"count": 0, "percentage": 0.0},
        "credits": _BALANCE,
        "asOf": _WHEN,
    },
}

#: Fields holding ids, dates and text, by their JSON name, wherever they sit in `data`.
ID_FIELDS = frozenset({"sessionId", "userId", "trainerId"})
DATE_FIELDS = frozenset(
    {"sessionDate", "at", "date", "purchasedAt", "validUntil", "deliveredAt", "asOf"}
)
TEXT_FIELDS = frozenset(
    {"location", "notes", "reason", "title", "packageName", "purchaseId", "causedBy", "planId"}
)


class Expected(StrEnum):
    """What a consumer of a topic must make of a record."""

    #: Sent to `<topic>.dlq` with the reason: the record is no event this topic carries.
    DEAD_LETTER = "dead-letter"
    #: Read past: a valid event of a type this consumer has no use for.
    PASSED_OVER = "passed-over"
    #: Applied, or refused by a rule of the consumer's own (then dead-lettered with it).
    APPLIED_OR_REFUSED = "applied-or-refused"


@dataclass(frozen=True, slots=True)
class FuzzRecord:
    """One record to publish: its topic (of the contract, before any prefix), what was done
    to it, and the exact bytes, key and headers sent."""

    topic: Topic
    kind: str
    value: bytes | None
    key: bytes | None
    #: A header's value may be absent (null on the wire).
    headers: Headers = ((CONTENT_TYPE_HEADER, b"application/json"),)
    #: Valid traffic, whose effect the test checks through the services' APIs.
    valid: bool = False


def expected_outcome(record: FuzzRecord, handled: Collection[str]) -> Expected:
    """What a consumer handling the event types `handled` on `record.topic` must do with it,
    by the contract: dead-letter what is no CloudEvent, no valid event of its type, from a
    source that does not write the topic, or of a contract type the topic does not carry;
    pass over a valid event of a type it does not handle; apply (or refuse) the rest."""
    try:
        envelope = parse_envelope(record.value or b"")
    except InvalidEvent:
        return Expected.DEAD_LETTER
    sole_source = record.topic.sole_source
    if sole_source is not None and envelope.source != sole_source:
        return Expected.DEAD_LETTER
    if envelope.type in EVENT_TYPES and envelope.type not in record.topic.event_types:
        return Expected.DEAD_LETTER
    if envelope.type not in handled:
        return Expected.PASSED_OVER
    try:
        parse_payload(envelope, EVENT_TYPES[envelope.type])
    except InvalidEvent:
        return Expected.DEAD_LETTER
    return Expected.APPLIED_OR_REFUSED


def draw(strategy: st.SearchStrategy[T], count: int) -> list[T]:
    """`count` examples of `strategy`, the same ones on every run (Hypothesis derandomized,
    no example database): a fixed corpus for a test that publishes them in one batch."""
    drawn: list[T] = []

    @settings(
        derandomize=True,
        database=None,
        max_examples=count,
        phases=[Phase.generate],
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(strategy)
    def collect(example: T) -> None:
        drawn.append(example)

    collect()
    return drawn[:count]


# --- building blocks ---------------------------------------------------------------------

#: Ids at and past the ends of the contract's range (the past ones must be refused).
hostile_ids = st.one_of(
    st.sampled_from([1, 2, 2**31 - 1, 2**31, 2**32, 2**53 - 1, 2**53 + 1, MAX_ID - 1, MAX_ID]),
    st.integers(min_value=1, max_value=MAX_ID),
)
out_of_range_ids = st.one_of(
    st.sampled_from([0, -1, -(2**63), MAX_ID + 1, 2**64, 2**64 + 1, 10**30]),
    st.integers(max_value=0),
    st.integers(min_value=MAX_ID + 1, max_value=2**200),
)
#: Dates at the ends of time, in odd offsets; some cannot be turned into UTC at all.
hostile_dates = st.sampled_from(
    [
        "0001-01-01T00:00:00Z",
        "0001-01-01T00:00:00+14:00",
        "0001-01-01T00:30:00+01:00",
        "1900-01-01T00:00:00Z",
        "1970-01-01T00:00:00Z",
        "2038-01-19T03:14:08Z",
        "9999-12-31T23:59:59Z",
        "9999-12-31T23:59:59.999999Z",
        "9999-12-31T23:00:00-14:00",
        "9999-12-31T12:00:00Z",
        "2026-02-10T10:00:00+23:59",
    ]
)
#: Text every service can store, at odd ends of Unicode.
storable_text = st.one_of(
    st.text(st.characters(codec="utf-8", exclude_characters="\x00"), min_size=1, max_size=40),
    st.sampled_from(["\u202eevil", "e\u0301" * 50, "😀" * 50, "\ufeff", " ", "\U0010ffff"]),
)
#: Text no database can store (as Python strings: JSON writes the surrogates as escapes).
unstorable_text = st.sampled_from(["a\x00b", "\x00", "a\ud800b", "\udfff", "\ud83d", "x\udc00"])


def _fields(value: Any) -> Iterator[tuple[dict[str, Any], str]]:
    """Every (object, key) of a JSON document, depth first."""
    if isinstance(value, dict):
        for key in list(value):
            yield value, key
            yield from _fields(value[key])
    elif isinstance(value, list):
        for item in value:
            yield from _fields(item)


def _envelope(event_type: str, data: Any, event_id: str, source: str) -> dict[str, Any]:
    dataversion = "2" if event_type in ("WorkoutLogged", "WorkoutStatusChanged") else "1"
    return {
        "specversion": "1.0",
        "id": event_id,
        "source": source,
        "type": event_type,
        "time": _WHEN,
        "datacontenttype": "application/json",
        "dataversion": dataversion,
        "data": data,
    }


def _source_for(topic: Topic) -> str:
    return topic.sole_source or HOSTILE_SOURCE


def _encode(document: Any) -> bytes:
    # Python's JSON writes lone surrogates as `\udXXX` escapes: bytes a careless producer sends.
    return json.dumps(document, separators=(",", ":"), allow_nan=True).encode()


@st.composite
def _base(draw_: st.DrawFn, topic: Topic) -> tuple[str, dict[str, Any], str]:
    """An event type of `topic`, a copy of its template and a fresh event id."""
    event_type = draw_(st.sampled_from(topic.event_types))
    data = json.loads(json.dumps(TEMPLATES[event_type]))
    return event_type, data, EVENT_ID_PLACEHOLDER


def _record(
    topic: Topic,
    kind: str,
    value: bytes | None,
    key: bytes | None = b"21",
    headers: Headers | None = None,
) -> FuzzRecord:
    if headers is None:
        return FuzzRecord(topic, kind, value, key)
    return FuzzRecord(topic, kind, value, key, headers=headers)


# --- mutations: each a strategy of records for a topic -------------------------------------


@st.composite
def not_json(draw_: st.DrawFn, topic: Topic) -> FuzzRecord:
    raw = draw_(
        st.one_of(
            st.binary(min_size=1, max_size=64).map(lambda b: b"\xff" + b),
            st.sampled_from([b"{not json", b"{", b"}", b"nul", b"\x00", b"\xef\xbb\xbf{}", b"'a'"]),
            st.text(max_size=20).map(lambda t: ("{" + t).encode("utf-8", "surrogatepass")),
        )
    )
    return _record(topic, "not-json", raw)


@st.composite
def truncated(draw_: st.DrawFn, topic: Topic) -> FuzzRecord:
    event_type, data, event_id = draw_(_base(topic))
    whole = _encode(_envelope(event_type, data, event_id, _source_for(topic)))
    cut = draw_(st.integers(min_value=0, max_value=len(whole) - 1))
    return _record(topic, "truncated", whole[:cut])


@st.composite
def empty_or_null(draw_: st.DrawFn, topic: Topic) -> FuzzRecord:
    value = draw_(st.sampled_from([b"", None]))
    # A record needs a key or a value: a null value (a tombstone) keeps its key.
    key = draw_(st.sampled_from([b"21", b""] if value is None else [b"21", None, b""]))
    return _record(topic, "empty" if value == b"" else "null-value", value, key=key)


@st.composite
def not_an_object(draw_: st.DrawFn, topic: Topic) -> FuzzRecord:
    document: object = draw_(
        st.one_of(
            st.sampled_from([None, True, 0, -1, 1.5, "text", [], [{}], {}]),
            st.lists(st.integers(), max_size=5),
            st.dictionaries(st.text(max_size=8), st.integers(), max_size=4),
        )
    )
    return _record(topic, "not-a-cloudevent", _encode(document))


ENVELOPE_ATTRIBUTES = ("specversion", "id", "source", "type", "data")


@st.composite
def broken_envelope(draw_: st.DrawFn, topic: Topic) -> FuzzRecord:
    """A missing attribute, or a wrong specversion, dataversion or id."""
    event_type, data, event_id = draw_(_base(topic))
    envelope = _envelope(event_type, data, event_id, _source_for(topic))
    how = draw_(
        st.sampled_from(
            ["missing", "specversion", "dataversion", "id", "source", "time", "data", "type"]
        )
    )
    if how == "missing":
        del envelope[draw_(st.sampled_from(ENVELOPE_ATTRIBUTES))]
    elif how == "specversion":
        envelope["specversion"] = draw_(st.sampled_from(["0.3", "2.0", "1", "", 1.0, None]))
    elif how == "dataversion":
        envelope["dataversion"] = draw_(st.sampled_from(["0", "3", "99", "", "1.0", 2, None]))
    elif how == "id":
        envelope["id"] = draw_(
            st.one_of(st.sampled_from(["", "x" * 201, 7, None]), unstorable_text)
        )
    elif how == "source":
        envelope["source"] = draw_(st.one_of(st.sampled_from(["", "s" * 501]), unstorable_text))
    elif how == "time":
        envelope["time"] = draw_(
            st.sampled_from(["2026-02-10T10:00:00", "yesterday", "2026-13-01T00:00:00Z", 0])
        )
    elif how == "data":
        envelope["data"] = draw_(st.sampled_from([None, [], "data", 1, [data]]))
    else:
        envelope["type"] = draw_(st.sampled_from([None, 1, "", "t" * 201]))
    return _record(topic, f"envelope-{how}", _encode(envelope))


@st.composite
def wrong_datacontenttype(draw_: st.DrawFn, topic: Topic) -> FuzzRecord:
    event_type, data, event_id = draw_(_base(topic))
    envelope = _envelope(event_type, data, event_id, _source_for(topic))
    envelope["datacontenttype"] = draw_(
        st.sampled_from(["text/plain", "application/xml", "application/octet-stream", "", "json"])
    )
    return _record(topic, "wrong-datacontenttype", _encode(envelope))


@st.composite
def wrong_event_type(draw_: st.DrawFn, topic: Topic) -> FuzzRecord:
    """A type no topic carries (unknown: passed over), or a valid event of another topic's
    type (dead-lettered: only its own topic's writers may say it)."""
    event_id = EVENT_ID_PLACEHOLDER
    foreign = [name for name in EVENT_TYPES if name not in topic.event_types]
    event_type = draw_(
        st.one_of(
            st.sampled_from(foreign),
            st.text(min_size=1, max_size=30).filter(lambda t: t not in EVENT_TYPES),
            st.sampled_from(["Session\ud800Booked", "\x00", "SessionBooked ", "sessionbooked"]),
        )
    )
    data = json.loads(json.dumps(TEMPLATES.get(event_type, TEMPLATES[topic.event_types[0]])))
    source = draw_(st.sampled_from([_source_for(topic), HOSTILE_SOURCE]))
    envelope = _envelope(event_type, data, event_id, source)
    return _record(topic, "wrong-event-type", _encode(envelope))


@st.composite
def broken_payload(draw_: st.DrawFn, topic: Topic) -> FuzzRecord:
    """One field of `data` dropped, mistyped, out of range, or holding text no database can
    store."""
    event_type, data, event_id = draw_(_base(topic))
    target, name = draw_(st.sampled_from(list(_fields(data))))
    how = draw_(st.sampled_from(["drop", "type", "range", "text", "null", "enum"]))
    if how == "drop":
        del target[name]
    elif how == "type":
        target[name] = draw_(st.sampled_from([[], {}, "12", True, 1.5, "x" * 3]))
    elif how == "range":
        target[name] = draw_(out_of_range_ids)
    elif how == "text":
        target[name] = draw_(unstorable_text)
    elif how == "null":
        target[name] = None
    else:
        target[name] = draw_(st.sampled_from(["SOLO", "gold", "-", "\ud800"]))
    envelope = _envelope(event_type, data, event_id, _source_for(topic))
    return _record(topic, f"payload-{how}", _encode(envelope))


@st.composite
def hostile_values(draw_: st.DrawFn, topic: Topic) -> FuzzRecord:
    """A valid-looking event whose ids, dates and text sit at the ends of their ranges."""
    event_type, data, event_id = draw_(_base(topic))
    for target, name in list(_fields(data)):
        if name in ID_FIELDS and draw_(st.booleans()):
            target[name] = draw_(hostile_ids)
        elif name in DATE_FIELDS and draw_(st.booleans()):
            target[name] = draw_(hostile_dates)
        elif name in TEXT_FIELDS and draw_(st.booleans()):
            target[name] = draw_(storable_text)
        elif name in ("attended", "noShows") and draw_(st.booleans()):
            target[name] = draw_(st.lists(hostile_ids, max_size=3, unique=True))
    if draw_(st.booleans()):
        target, name = draw_(st.sampled_from(list(_fields(data))))
        if isinstance(target[name], int) and not isinstance(target[name], bool):
            target[name] = draw_(st.sampled_from([2**31 - 1, 2**31, MAX_ID, 10**6]))
    envelope = _envelope(event_type, data, event_id, _source_for(topic))
    envelope["time"] = draw_(st.one_of(st.none(), hostile_dates))
    if envelope["time"] is None:
        del envelope["time"]
    return _record(topic, "hostile-values", _encode(envelope), key=b"1")


@st.composite
def odd_numbers(draw_: st.DrawFn, topic: Topic) -> FuzzRecord:
    """Numbers JSON allows and Python's parser balks at: thousands of digits, exponents,
    NaN and Infinity."""
    event_type, data, event_id = draw_(_base(topic))
    numeric = [(t, n) for t, n in _fields(data) if isinstance(t[n], int | float)]
    target, name = draw_(st.sampled_from(numeric))
    placeholder = "__NUMBER__"
    target[name] = placeholder
    literal = draw_(
        st.sampled_from(["9" * 5000, "1e400", "-1e400", "NaN", "Infinity", "1e-400", "1E2", "-0"])
    )
    raw = _encode(_envelope(event_type, data, event_id, _source_for(topic)))
    value = raw.replace(f'"{placeholder}"'.encode(), literal.encode(), 1)
    return _record(topic, "odd-number", value)


@st.composite
def deeply_nested(draw_: st.DrawFn, topic: Topic) -> FuzzRecord:
    """JSON nested deeper than any parser's recursion allows, at the top or inside `data`."""
    event_type, data, event_id = draw_(_base(topic))
    depth = draw_(st.sampled_from([2_000, 100_000]))
    nested = b"[" * depth + b"]" * depth
    if draw_(st.booleans()):
        return _record(topic, "deeply-nested", nested)
    raw = _encode(_envelope(event_type, {**data, "extra": "__NESTED__"}, event_id, "/x"))
    return _record(topic, "deeply-nested", raw.replace(b'"__NESTED__"', nested, 1))


def record_size(key: bytes | None, value: bytes | None, headers: Headers) -> int:
    """The bytes of a batch holding just this record, as the producer reckons them."""
    size: int = DefaultRecordBatchBuilder.estimate_size_in_bytes(key, value, list(headers))
    return size


@st.composite
def huge_text(draw_: st.DrawFn, topic: Topic) -> FuzzRecord:
    """A text field grown to make the largest record the broker takes."""
    event_type, data, event_id = draw_(_base(topic))
    texts = [(t, n) for t, n in _fields(data) if isinstance(t[n], str)]
    target, name = draw_(st.sampled_from(texts))
    character = draw_(st.sampled_from(["x", "é", "😀", "\u202e"]))
    target[name] = "__HUGE__"
    raw = _encode(_envelope(event_type, data, event_id, _source_for(topic)))
    record = _record(topic, "huge-text", raw)
    room = BROKER_MAX_RECORD_BYTES - record_size(record.key, raw, record.headers)
    text = character * ((room + len(b'"__HUGE__"') - 2) // len(character.encode()))
    value = raw.replace(b"__HUGE__", text.encode(), 1)
    while record_size(record.key, value, record.headers) > BROKER_MAX_RECORD_BYTES:
        text = text[:-1]
        value = raw.replace(b"__HUGE__", text.encode(), 1)
    return replace(record, value=value)


@st.composite
def hostile_headers(draw_: st.DrawFn, topic: Topic) -> FuzzRecord:
    """A valid event under headers that are garbage: bad trace context, bytes that are no
    text, a header without a value."""
    event_type, data, event_id = draw_(_base(topic))
    value = _encode(_envelope(event_type, data, event_id, HOSTILE_SOURCE))
    garbage = draw_(st.binary(max_size=64))
    headers: Headers = (
        ("traceparent", draw_(st.sampled_from([b"00-zz", garbage, b"\xff\xfe", None]))),
        ("tracestate", garbage),
        ("correlation-id", draw_(st.sampled_from([b"\x00\n\r", b"\xc3\x28", b"a" * 5000, None]))),
        (CONTENT_TYPE_HEADER, draw_(st.sampled_from([b"text/plain", b"", b"\xff"]))),
    )
    return _record(topic, "hostile-headers", value, headers=headers)


#: Every way a record is broken, with how many of each a run draws per topic.
MUTATIONS: dict[str, tuple[Callable[[Topic], st.SearchStrategy[FuzzRecord]], int]] = {
    "not-json": (not_json, 8),
    "truncated": (truncated, 8),
    "empty-or-null": (empty_or_null, 4),
    "not-an-object": (not_an_object, 6),
    "broken-envelope": (broken_envelope, 16),
    "wrong-datacontenttype": (wrong_datacontenttype, 4),
    "wrong-event-type": (wrong_event_type, 10),
    "broken-payload": (broken_payload, 20),
    "hostile-values": (hostile_values, 20),
    "odd-numbers": (odd_numbers, 6),
    "deeply-nested": (deeply_nested, 2),
    "hostile-headers": (hostile_headers, 4),
}


def hostile_corpus(topic: Topic) -> list[FuzzRecord]:
    """The fixed batch of hostile records for `topic`: `MUTATIONS`, and one record with a
    megabyte of text."""
    records = [
        record for mutation, count in MUTATIONS.values() for record in draw(mutation(topic), count)
    ]
    records += draw(huge_text(topic), 1)
    return [_renumbered(record, f"{topic.name}/{n}") for n, record in enumerate(records)]


def _renumbered(record: FuzzRecord, name: str) -> FuzzRecord:
    """`record` with an event id of its own in place of the placeholder."""
    if record.value is None:
        return record
    event_id = str(uuid.uuid5(uuid.NAMESPACE_URL, name)).encode()
    return replace(record, value=record.value.replace(EVENT_ID_PLACEHOLDER.encode(), event_id))


def topic_of_type(event_type: str) -> Topic:
    return topic_for_event(event_type)
