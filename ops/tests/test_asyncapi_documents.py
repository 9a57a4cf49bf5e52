"""The AsyncAPI documents kept in `contracts/asyncapi/`: up to date with what the services
serve, the same whatever the environment, and each naming what its service consumes and
publishes."""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import pytest

from contracts.services import SERVICES, Service
from ops.asyncapi_documents import ASYNCAPI_FILES, DEFAULT_DIRECTORY, file_name, rendered_documents


def test_the_asyncapi_files_are_up_to_date() -> None:
    stale = ASYNCAPI_FILES.stale()
    assert stale == [], f"stale AsyncAPI documents {stale}: run `make schemas`"


def test_staleness_is_detected(tmp_path: Path) -> None:
    ASYNCAPI_FILES.write(tmp_path)
    assert ASYNCAPI_FILES.stale(tmp_path) == []
    booking = tmp_path / "booking.asyncapi.json"
    booking.write_text(booking.read_text().replace('"booking.sessions"', '"booking.session"'))
    (tmp_path / "billing.asyncapi.json").write_text("{}")
    (tmp_path / "notes.txt").write_text("not a document: left alone")

    assert ASYNCAPI_FILES.stale(tmp_path) == ["billing.asyncapi.json", "booking.asyncapi.json"]


def test_the_documents_do_not_depend_on_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """A prefix, another broker, another principal or identity provider change nothing."""
    for name, value in {
        "KAFKA_TOPIC_PREFIX": "t0123456789.",
        "KAFKA_BOOTSTRAP_SERVERS": "kafka.example.org:9093",
        "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "KAFKA_SASL_USERNAME": "credits",
        "KAFKA_SASL_PASSWORD": "secret",
        "AUTH_ISSUER": "https://identity.example.org",
        "AUTH_JWKS_URL": "https://identity.example.org/jwks.json",
        "BOOKING_CONSUMER_GROUP": "booking-copy",
        "CREDITS_HTTP_PORT": "9999",
    }.items():
        monkeypatch.setenv(name, value)

    assert rendered_documents() == {
        path.name: path.read_text() for path in DEFAULT_DIRECTORY.glob("*.asyncapi.json")
    }


@pytest.mark.parametrize("service", SERVICES, ids=[service.name for service in SERVICES])
def test_each_document_names_what_its_service_consumes_and_publishes(service: Service) -> None:
    document = json.loads((DEFAULT_DIRECTORY / file_name(service)).read_text())
    main = importlib.import_module(f"{service.name}.main")

    addresses: dict[str, set[str]] = {"receive": set(), "send": set()}
    for operation in document["operations"].values():
        channel = document["channels"][operation["channel"]["$ref"].rsplit("/", 1)[-1]]
        addresses[operation["action"]].add(channel["address"])
    inputs = {topic.name for topic in main.INPUT_TOPICS}
    assert addresses["receive"] == inputs
    outputs = {topic.name for topic in main.OUTPUT_TOPICS}
    assert addresses["send"] == outputs | {name + ".dlq" for name in inputs}
