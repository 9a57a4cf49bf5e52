"""Schemathesis set up to fuzz a service's HTTP API from the OpenAPI document it serves, the
same on every run: a fixed seed, derandomized generation, no example database, a bounded
number of examples, and every response check Schemathesis has for a single response."""

from __future__ import annotations

from typing import Any

import schemathesis
from schemathesis.schemas import BaseSchema

#: What Schemathesis takes for a service accepting a valid request (its default).
ACCEPTED = ["2xx", "3xx", "401", "403", "404", "409", "429", "5xx"]
#: Every run draws the same requests.
SEED = 20_260_301
#: An event stream (the usage stream) is read this long, at most, before it is cut short.
STREAM_SECONDS = 2.0


def fuzzing_config(*, max_examples: int, stateful_steps: int = 6) -> schemathesis.Config:
    """Deterministic generation of valid and invalid requests with every check of a
    response against its documentation (status codes, content types, bodies and headers)
    and against what the request asked (valid data accepted, invalid refused)."""
    settings: dict[str, Any] = {
        "seed": SEED,
        "generation": {
            "mode": "all",
            "deterministic": True,
            "database": "none",
            "max-examples": max_examples,
        },
        "phases": {"stateful": {"max-steps": stateful_steps}},
        "request-timeout": STREAM_SECONDS,
        "max-stream-events": 1,
        "checks": {
            # A request valid by its schema may still break a rule across fields ("reason
            # goes with a status change") or name a page's cursor that is not there: the
            # services document those refusals as 422.
            "positive_data_acceptance": {"expected-statuses": [*ACCEPTED, "422"]},
        },
    }
    return schemathesis.Config.from_dict(settings)


def served_schema(base_url: str, config: schemathesis.Config) -> BaseSchema:
    """The OpenAPI document a running service serves, its requests sent back to it."""
    return schemathesis.openapi.from_url(f"{base_url}/openapi.json", config=config)
