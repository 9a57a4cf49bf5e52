"""The exported JSON Schemas: up to date, and agreeing with the models they come from."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from contracts.envelope import InvalidEvent, build_event, encode, parse_event
from contracts.events import EVENT_TYPES, WorkoutLogged
from contracts.schemas import DEFAULT_DIRECTORY, event_schema, stale_files, write_schemas


def test_exported_schemas_are_up_to_date() -> None:
    stale = stale_files(DEFAULT_DIRECTORY)
    assert stale == [], f"stale schema files {stale}: run `make schemas`"


def test_staleness_is_detected(tmp_path: Path) -> None:
    write_schemas(tmp_path)
    assert stale_files(tmp_path) == []
    (tmp_path / "WorkoutLogged.v1.schema.json").write_text("{}")
    (tmp_path / "Retired.v1.schema.json").write_text("{}")
    assert stale_files(tmp_path) == ["Retired.v1.schema.json", "WorkoutLogged.v1.schema.json"]


def _workout_record(**data: Any) -> dict[str, Any]:
    payload = {
        "workoutId": str(uuid.uuid4()),
        "userId": 1,
        "title": "t",
        "date": "2026-01-01T00:00:00Z",
        "status": "completed",
        **data,
    }
    return {
        "specversion": "1.0",
        "id": "1",
        "source": "/s",
        "type": "WorkoutLogged",
        "data": payload,
    }


@pytest.mark.parametrize(
    ("data", "valid"),
    [
        ({}, True),
        ({"sessionType": "trainer-led", "sessionId": 7, "trainerId": 8}, True),
        ({"sessionType": "trainer-led", "sessionId": 7}, False),
        ({"sessionType": "solo", "trainerId": 8}, False),
        ({"status": "finished"}, False),
    ],
)
def test_schema_and_model_agree_on_the_session_type_rule(data: dict[str, Any], valid: bool) -> None:
    validator = jsonschema.Draft202012Validator(event_schema(WorkoutLogged))
    assert validator.is_valid(_workout_record(**data)) is valid


def test_a_built_event_validates_against_its_schema() -> None:
    event = build_event(WorkoutLogged.model_validate(_workout_record()["data"]), source="/workouts")
    jsonschema.validate(json.loads(encode(event)), event_schema(WorkoutLogged))


def _purchase_record(sessions: int, package_name: str = "Ten", event_id: str = "1") -> Any:
    return {
        "specversion": "1.0",
        "id": event_id,
        "source": "/platform/store",
        "type": "PackagePurchased",
        "data": {
            "purchaseId": "p-1",
            "userId": 1,
            "sessions": sessions,
            "packageName": package_name,
            "purchasedAt": "2026-01-01T00:00:00Z",
        },
    }


@pytest.mark.parametrize(
    ("record", "valid"),
    [
        (_purchase_record(1000), True),
        (_purchase_record(1001), False),
        (_purchase_record(2**40), False),
        (_purchase_record(10, package_name="a\x00b"), False),
        (_purchase_record(10, package_name="x" * 201), False),
        (_purchase_record(10, event_id="x" * 201), False),
        (_workout_record(exercises=[{"name": "Squat", "sets": [{"reps": 8}] * 51}]), False),
        (_workout_record(title="t" * 200), True),
        (_workout_record(title="t" * 201), False),
    ],
    ids=[
        "1000 sessions",
        "1001 sessions",
        "2^40 sessions",
        "NUL",
        "long name",
        "long id",
        "51 sets",
        "200-character title",
        "201-character title",
    ],
)
def test_schema_and_model_agree_on_the_limits(record: dict[str, Any], valid: bool) -> None:
    """Nothing past the limits gets in, whether a producer checks with the schema or a
    consumer parses with the model."""
    schema = event_schema(EVENT_TYPES[record["type"]])
    assert jsonschema.Draft202012Validator(schema).is_valid(record) is valid
    try:
        parse_event(json.dumps(record).encode())
    except InvalidEvent:
        parsed = False
    else:
        parsed = True
    assert parsed is valid
