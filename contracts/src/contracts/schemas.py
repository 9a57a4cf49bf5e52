"""Export JSON Schemas of every event, for platform services that are not written in Python.

    uv run python -m contracts.schemas            # write contracts/schemas/
    uv run python -m contracts.schemas --check    # exit 1 when the files are stale

Each file describes a whole record value: the CloudEvents envelope with `type` fixed and
`data` typed by the payload model of the version named in the file name.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Literal

from pydantic import create_model

from contracts.envelope import CloudEvent
from contracts.events import EVENT_TYPES, EventPayload

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
        schema_file_name(model): json.dumps(event_schema(model), indent=2, sort_keys=True) + "\n"
        for model in EVENT_TYPES.values()
    }


def stale_files(directory: Path) -> list[str]:
    """Names of schema files that are missing, different, or no longer belong."""
    expected = rendered_schemas()
    present = {path.name for path in directory.glob("*.schema.json")}
    stale = [
        name
        for name, text in expected.items()
        if not (directory / name).is_file() or (directory / name).read_text() != text
    ]
    return sorted(stale + [name for name in present if name not in expected])


def write_schemas(directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    expected = rendered_schemas()
    for path in directory.glob("*.schema.json"):
        if path.name not in expected:
            path.unlink()
    for name, text in expected.items():
        (directory / name).write_text(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--output", type=Path, default=DEFAULT_DIRECTORY)
    parser.add_argument("--check", action="store_true", help="only report stale files")
    args = parser.parse_args(argv)
    if args.check:
        stale = stale_files(args.output)
        for name in stale:
            print(f"stale: {args.output / name}", file=sys.stderr)
        if stale:
            print("run `make schemas` to export them again", file=sys.stderr)
        return 1 if stale else 0
    write_schemas(args.output)
    print(f"wrote {len(EVENT_TYPES)} schemas to {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
