"""The CloudEvents envelope: round trips, parse failures, payload versions."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from contracts import envelope as envelope_module
from contracts.envelope import (
    CONTENT_TYPE,
    InvalidPayload,
    NotCloudEvent,
    NotJson,
    UnknownEventType,
    UnsupportedDataVersion,
    build_event,
    encode,
    parse_event,
    partition_key,
    record_headers,
)
from contracts.events import (
    EVENT_TYPES,
    PackagePurchased,
    SessionBooked,
    SessionType,
    WorkoutLogged,
)
from contracts.topics import BOOKING_SESSIONS, COMMERCE_PACKAGES, WORKOUT_SESSIONS

NOW = datetime(2026, 1, 15, 10, 45, tzinfo=UTC)


def legacy_workout_record(**data_overrides: Any) -> dict[str, Any]:
    """A WorkoutLogged from a producer older than session types: no sessionType at all."""
    data = {
        "workoutId": "5f0c6a52-3a55-4e0b-9a55-2f1b0c1d8e11",
        "userId": 123,
        "title": "Morning Chest Day",
        "date": "2026-01-12T07:30:00Z",
        "status": "completed",
        "exercises": [{"name": "Bench press", "sets": [{"reps": 10, "weight": 60}]}],
        "totalWeight": 600,
        "totalReps": 10,
        "totalSets": 1,
        "experiencePoints": 25,
    }
    data.update(data_overrides)
    return {
        "specversion": "1.0",
        "id": "e-1",
        "source": "/legacy/app",
        "type": "WorkoutLogged",
        "time": "2026-01-12T08:00:00Z",
        "data": data,
    }


def test_round_trip_keeps_id_type_and_payload() -> None:
    payload = PackagePurchased(
        purchase_id="order-77", user_id=123, sessions=10, purchased_at=NOW, package_name="Ten"
    )
    built = build_event(payload, source="/platform/store", event_id="evt-1", time=NOW)
    parsed = parse_event(encode(built))
    assert parsed.id == "evt-1"
    assert parsed.type == "PackagePurchased"
    assert parsed.envelope.source == "/platform/store"
    assert parsed.envelope.time == NOW
    assert parsed.payload == payload


@pytest.mark.parametrize("model", list(EVENT_TYPES.values()), ids=list(EVENT_TYPES))
def test_every_event_type_round_trips_through_json(model: type[Any]) -> None:
    schema_example = _minimal_payload(model)
    built = build_event(schema_example, source="/test")
    assert parse_event(encode(built)).payload == schema_example


def test_built_events_have_unique_ids_unless_given_one() -> None:
    payload = _minimal_payload(SessionBooked)
    assert build_event(payload, source="/t").id != build_event(payload, source="/t").id
    assert build_event(payload, source="/t", event_id="x").id == "x"


def test_legacy_workout_without_session_type_parses_as_solo() -> None:
    parsed = parse_event(json.dumps(legacy_workout_record()))
    assert isinstance(parsed.payload, WorkoutLogged)
    assert parsed.payload.session_type is SessionType.SOLO
    assert parsed.envelope.dataversion == "1"


def test_unknown_envelope_attributes_and_payload_fields_are_ignored() -> None:
    record = legacy_workout_record(futureField=[1, 2])
    record["traceparent"] = "00-abc-def-01"
    record["partitionkey"] = "123"
    assert parse_event(record).payload.to_json_dict()["userId"] == 123


def test_bytes_that_are_not_json_are_rejected_as_such() -> None:
    with pytest.raises(NotJson, match="not JSON"):
        parse_event(b"\xff\xfe not json")


@pytest.mark.parametrize(
    ("document", "named"),
    [
        ("[1, 2]", "a JSON list"),
        ('{"id": "x", "type": "WorkoutLogged", "data": {}}', "specversion"),
        ('{"specversion": "0.3", "id": "x", "source": "s", "type": "T", "data": {}}', "1.0"),
        ('{"specversion": "1.0", "id": "", "source": "s", "type": "T", "data": {}}', "id"),
        ('{"specversion": "1.0", "id": "x", "source": "s", "type": "T"}', "data"),
    ],
)
def test_json_that_is_not_a_cloudevent_is_rejected_naming_the_problem(
    document: str, named: str
) -> None:
    with pytest.raises(NotCloudEvent) as caught:
        parse_event(document)
    assert named in caught.value.reason


def test_unknown_event_type_is_rejected() -> None:
    record = legacy_workout_record()
    record["type"] = "WorkoutDeleted"
    with pytest.raises(UnknownEventType, match="WorkoutDeleted"):
        parse_event(record)


def test_schema_invalid_payload_names_the_field() -> None:
    with pytest.raises(InvalidPayload) as caught:
        parse_event(legacy_workout_record(status="finished"))
    assert caught.value.reason.startswith("invalid WorkoutLogged payload: status")


def test_unsupported_data_version_is_rejected() -> None:
    record = legacy_workout_record()
    record["dataversion"] = "7"
    with pytest.raises(UnsupportedDataVersion, match="'7'"):
        parse_event(record)


def test_data_version_selects_an_upcaster(monkeypatch: pytest.MonkeyPatch) -> None:
    def rename_kind_to_session_type(data: dict[str, Any]) -> dict[str, Any]:
        upgraded = dict(data)
        upgraded["sessionType"] = upgraded.pop("kind")
        return upgraded

    monkeypatch.setitem(
        envelope_module.UPCASTERS, ("WorkoutLogged", "0"), ("1", rename_kind_to_session_type)
    )
    record = legacy_workout_record(kind="trainer-led", sessionId=789, trainerId=456)
    record["dataversion"] = "0"
    parsed = parse_event(record)
    assert isinstance(parsed.payload, WorkoutLogged)
    assert parsed.payload.session_type is SessionType.TRAINER_LED


def test_each_workout_is_published_with_the_oldest_version_that_carries_it() -> None:
    solo = WorkoutLogged.model_validate(legacy_workout_record()["data"])
    group = WorkoutLogged.model_validate(
        {**legacy_workout_record()["data"], "sessionType": "group", "sessionId": 7, "trainerId": 2}
    )
    assert build_event(solo, source="/tests").dataversion == "1"
    assert build_event(group, source="/tests").dataversion == "2"
    for payload in (solo, group):
        assert parse_event(encode(build_event(payload, source="/tests"))).payload == payload


@pytest.mark.parametrize("session_type", ["trainer-assisted", "group"])
def test_a_version_1_event_cannot_carry_a_version_2_session_type(session_type: str) -> None:
    record = legacy_workout_record(sessionType=session_type, sessionId=7, trainerId=2)
    record["dataversion"] = "1"
    with pytest.raises(UnsupportedDataVersion, match=f"'{session_type}' needs dataversion 2"):
        parse_event(record)


def test_record_key_is_the_topic_key_field() -> None:
    booked = _minimal_payload(SessionBooked)
    assert BOOKING_SESSIONS.key == "sessionId"
    assert partition_key(booked) == str(booked.session_id).encode()
    purchase = _minimal_payload(PackagePurchased)
    assert COMMERCE_PACKAGES.key == "userId"
    assert partition_key(purchase) == str(purchase.user_id).encode()
    assert WORKOUT_SESSIONS.key == "userId"


def test_records_carry_the_cloudevents_content_type() -> None:
    assert record_headers() == [("content-type", CONTENT_TYPE.encode())]
    assert CONTENT_TYPE == "application/cloudevents+json"


def _minimal_payload(model: type[Any]) -> Any:
    balance = {"total": 10, "used": 1, "remaining": 9}
    usage = {"count": 1, "percentage": 50.0}
    candidates: dict[str, Any] = {
        "sessionId": 789,
        "userId": 123,
        "trainerId": 456,
        "sessionDate": "2026-01-15T10:00:00Z",
        "at": "2026-01-15T11:00:00Z",
        "workoutId": str(uuid.uuid4()),
        "title": "Session",
        "date": "2026-01-15T10:00:00Z",
        "status": "completed",
        "previousStatus": "in_progress",
        "purchaseId": "order-1",
        "sessions": 10,
        "purchasedAt": "2026-01-01T00:00:00Z",
        "amount": 10,
        "balance": balance,
        "cause": "workout-logged",
        "reason": "because",
        "total": 2,
        "solo": usage,
        "trainerLed": usage,
        "credits": balance,
        "asOf": "2026-01-15T12:00:00Z",
        "packageId": str(uuid.uuid4()),
        "validUntil": "2026-02-01T00:00:00Z",
        "policy": {"lateCancelHours": 24, "noShowForfeits": True},
        "causedBy": "event-1",
        "soloUsed": 3,
        "soloAllowance": 2,
        "over": 1,
        "threshold": 1,
        "sessionsLeft": 2,
        "capacity": 5,
        "attended": [123, 124],
        "noShows": [125],
    }
    if model.__name__ == "SessionCreditForfeited":
        candidates["cause"] = "late-cancel"
    if model is WorkoutLogged or model.__name__ == "WorkoutStatusChanged":
        candidates["sessionType"] = "trainer-led"
    fields = {field.alias or name for name, field in model.model_fields.items()}
    return model.model_validate({k: v for k, v in candidates.items() if k in fields})
