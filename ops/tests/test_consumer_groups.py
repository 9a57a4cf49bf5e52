"""Replay, rebuild, lag and status act on the consumer group each service really consumes in:
the one its own settings name, from the same environment."""

from __future__ import annotations

import importlib

import pytest

from contracts.services import SERVICES
from ops.local import operations


@pytest.mark.parametrize("service", [s.name for s in SERVICES])
@pytest.mark.parametrize(
    ("environment", "expected"),
    [
        ({}, "{service}"),
        ({"KAFKA_TOPIC_PREFIX": "t1."}, "t1.{service}"),
        ({"KAFKA_TOPIC_PREFIX": "t1.", "{SERVICE}_CONSUMER_GROUP": "copy"}, "copy"),
        ({"{SERVICE}_CONSUMER_GROUP": ""}, "{service}"),
    ],
    ids=["default", "behind-the-prefix", "configured", "configured-empty"],
)
def test_ops_names_the_group_the_service_consumes_in(
    service: str,
    environment: dict[str, str],
    expected: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    env = {name.format(SERVICE=service.upper()): value for name, value in environment.items()}
    for name in ("KAFKA_TOPIC_PREFIX", f"{service.upper()}_CONSUMER_GROUP"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = importlib.import_module(f"{service}.settings").Settings()

    assert operations.consumer_group(service, env) == expected.format(service=service)
    assert settings.consumer_group == expected.format(service=service)
