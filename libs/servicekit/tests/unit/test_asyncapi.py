"""The AsyncAPI document a runtime serves: what it consumes, what it publishes, and schemas
that accept the events the platform really sends."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any, ClassVar

import jsonschema
import pytest
import yaml
from httpx import ASGITransport, AsyncClient

from contracts.envelope import build_event, encode
from contracts.events import Balance, CreditsGranted, PackagePurchased
from contracts.services import CREDITS, Service
from contracts.topics import COMMERCE_PACKAGES, CREDITS_LEDGER
from servicekit.runtime import ServiceRuntime
from servicekit.settings import ServiceSettings, settings_config
from testkit.probe import ProbeStore, probe_handlers


class ProbeSettings(ServiceSettings):
    model_config = settings_config(CREDITS)
    service: ClassVar[Service] = CREDITS


@pytest.fixture
async def api() -> AsyncIterator[AsyncClient]:
    """A runtime consuming commerce.packages and publishing credits.ledger; never started."""
    runtime = ServiceRuntime(
        ProbeSettings(
            database_url="postgresql+psycopg://nobody@127.0.0.1:1/none",
            kafka_bootstrap_servers="127.0.0.1:1",
            kafka_topic_prefix="p.",
        )
    )

    runtime.consumer.handle(ProbeStore(), probe_handlers())
    runtime.subscribe(COMMERCE_PACKAGES)
    runtime.publishes(CREDITS_LEDGER)
    app = runtime.create_app(title="Probe service")
    async with AsyncClient(transport=ASGITransport(app=app), base_url="http://probe") as client:
        yield client


def operations(document: dict[str, Any]) -> set[tuple[str, str]]:
    channels = document["channels"]
    return {
        (operation["action"], channels[operation["channel"]["$ref"].split("/")[-1]]["address"])
        for operation in document["operations"].values()
    }


def payload_schema(document: dict[str, Any], address: str) -> dict[str, Any]:
    """The message payload schema of the channel at `address`, with its references."""
    [channel] = [c for c in document["channels"].values() if c["address"] == address]
    [reference] = channel["messages"].values()
    message = document["components"]["messages"][reference["$ref"].split("/")[-1]]
    return {**message["payload"], "components": document["components"]}


def accepts(schema: dict[str, Any], event: bytes) -> bool:
    try:
        jsonschema.validate(json.loads(event), schema)
    except jsonschema.ValidationError:
        return False
    return True


PURCHASE = encode(
    build_event(
        PackagePurchased(purchase_id="p-1", user_id=7, sessions=10, purchased_at=datetime.now(UTC)),
        source="/store",
    )
)
GRANT = encode(
    build_event(
        CreditsGranted(
            user_id=7, amount=10, purchase_id="p-1", balance=Balance(total=10, used=0, remaining=10)
        ),
        source="/credits",
    )
)


async def test_it_lists_the_topics_consumed_and_those_published_with_their_dead_letters(
    api: AsyncClient,
) -> None:
    response = await api.get("/asyncapi.json")
    assert response.status_code == 200
    document = response.json()
    assert document["asyncapi"] == "3.0.0"
    assert document["info"]["title"] == "Probe service"
    assert operations(document) == {
        ("receive", "p.commerce.packages"),
        ("send", "p.commerce.packages.dlq"),
        ("send", "p.credits.ledger"),
    }


async def test_payload_schemas_are_the_contracts_envelopes_of_each_topic(
    api: AsyncClient,
) -> None:
    document = (await api.get("/asyncapi.json")).json()
    consumed = payload_schema(document, "p.commerce.packages")
    published = payload_schema(document, "p.credits.ledger")
    assert accepts(consumed, PURCHASE)
    assert not accepts(consumed, GRANT)
    assert accepts(published, GRANT)
    assert not accepts(published, PURCHASE)
    broken = PURCHASE.replace(b'"sessions":10', b'"sessions":"ten"')
    assert not accepts(consumed, broken)


async def test_messages_document_the_trace_and_correlation_headers(api: AsyncClient) -> None:
    document = (await api.get("/asyncapi.json")).json()
    for message in document["components"]["messages"].values():
        assert message["correlationId"]["location"] == "$message.header#/correlation-id"
        assert {"traceparent", "correlation-id"} <= set(message["headers"]["properties"])


async def test_it_is_served_as_yaml_and_as_a_page_too(api: AsyncClient) -> None:
    as_json = (await api.get("/asyncapi.json")).json()
    as_yaml = await api.get("/asyncapi.yaml")
    assert as_yaml.headers["content-type"].startswith("application/yaml")
    assert yaml.safe_load(as_yaml.text) == as_json
    page = await api.get("/asyncapi")
    assert page.status_code == 200
    assert "p.credits.ledger" in page.text
