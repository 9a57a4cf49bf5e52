"""The exported JSON Schemas: up to date, and agreeing with the models they come from."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from contracts.envelope import build_event, encode
from contracts.events import WorkoutLogged
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
    import json

    event = build_event(WorkoutLogged.model_validate(_workout_record()["data"]), source="/workouts")
    jsonschema.validate(json.loads(encode(event)), event_schema(WorkoutLogged))
