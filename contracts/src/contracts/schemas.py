"""Export JSON Schemas of every event, for platform services that are not written in Python.

    uv run python -m contracts.schemas            # write contracts/schemas/
    uv run python -m contracts.schemas --check    # exit 1 when the files are stale

Each file describes a whole record value: the CloudEvents envelope with `type` fixed and
`data` typed by the payload model of the version named in the file name.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import create_model

from contracts.envelope import CloudEvent
from contracts.events import EVENT_TYPES, EventPayload
from contracts.generated import GeneratedFiles, stable_json

DEFAULT_DIRECTORY = Path(__file__).resolve().parents[2] / "schemas"


def schema_file_name(model: type[EventPayload]) -> str:
    return f"{model.event_type}.v{model.data_version}.schema.json"


def event_schema(model: type[EventPayload]) -> dict[str, Any]:
    record = create_model(
        model.event_type,
        __base__=CloudEvent,
        __doc__=f"A {model.event_type} event (payload version {model.data_version}).",
        type=(Literal[model.event_type], ...),  # type: ignore[arg-type]
        data=(model, ...),
    )
    schema: dict[str, Any] = record.model_json_schema(by_alias=True, mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = schema_file_name(model)
    return schema


def rendered_schemas() -> dict[str, str]:
    """File name -> file text, for every event type."""
    return {
        schema_file_name(model): stable_json(event_schema(model)) for model in EVENT_TYPES.values()
    }


SCHEMA_FILES = GeneratedFiles("schemas", DEFAULT_DIRECTORY, "*.schema.json", rendered_schemas)


def stale_files(directory: Path) -> list[str]:
    """Names of schema files that are missing, different, or no longer belong."""
    return SCHEMA_FILES.stale(directory)


def write_schemas(directory: Path) -> None:
    SCHEMA_FILES.write(directory)


if __name__ == "__main__":
    raise SystemExit(SCHEMA_FILES.main(description=__doc__.splitlines()[0] if __doc__ else None))
