"""The service's AsyncAPI document (3.0), beside its OpenAPI one: `GET /asyncapi.json`,
`/asyncapi.yaml`, and `/asyncapi` (a page rendering it with the AsyncAPI web component,
served from the service's own files: `servicekit.docs`).

FastStream generates it from the runtime's broker: a receive operation for every topic the
service subscribes to, and a send operation for every publisher declared on the broker. The
service publishes through its outbox relay, not through FastStream, so the runtime declares
a publisher per output topic (`ServiceRuntime.publishes`) and per dead-letter topic only to
describe them; they never send anything.

Messages are CloudEvents whose `data` is a contract payload. Publishers declare one
envelope model per event type of their topic (`event_envelope`), so their schemas come from
the contract's pydantic models. The subscriber hands FastStream raw bytes (the consumer
parses them itself, to dead-letter what is not JSON), so FastStream can only call its payload
"binary"; the document is then completed here with the envelopes of the event types the
consumer handles on each topic, and with the record headers the platform uses.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Collection, Mapping
from typing import Any, Literal, Union
from urllib.parse import unquote

import yaml
from fastapi import APIRouter
from fastapi.responses import HTMLResponse, JSONResponse, Response
from faststream.kafka import KafkaBroker
from faststream.specification import AsyncAPI
from pydantic import create_model
from pydantic.json_schema import models_json_schema

from contracts import dead_letters
from contracts.envelope import CONTENT_TYPE, CONTENT_TYPE_HEADER, CloudEvent
from contracts.events import EVENT_TYPES
from contracts.topics import DEAD_LETTER_SUFFIX, Topic
from servicekit import tracing
from servicekit.docs import asyncapi_page

_SCHEMA_REF = "#/components/schemas/{model}"

#: Record headers of every event of the platform.
EVENT_HEADERS: dict[str, Any] = {
    "type": "object",
    "properties": {
        CONTENT_TYPE_HEADER: {"type": "string", "const": CONTENT_TYPE},
        tracing.TRACEPARENT: {
            "type": "string",
            "description": "W3C Trace Context of the request or event that caused this one.",
            "pattern": "^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}",
        },
        tracing.TRACESTATE: {"type": "string", "description": "W3C tracestate, passed along."},
        tracing.CORRELATION_ID: {
            "type": "string",
            "description": "The chain of requests and events this one belongs to.",
        },
    },
}

#: Record headers of a dead letter: the original record's, plus why and where from.
DEAD_LETTER_HEADERS: dict[str, Any] = {
    "type": "object",
    "properties": {
        **EVENT_HEADERS["properties"],
        dead_letters.REASON: {"type": "string", "description": "Why it was dead-lettered."},
        dead_letters.REASON_KIND: {
            "type": "string",
            "description": "The kind of reason, a short stable name (`invalid-payload`, "
            "`rejected`, `session-id-taken`, …).",
        },
        dead_letters.TOPIC: {"type": "string", "description": "The original topic."},
        dead_letters.PARTITION: {"type": "string", "description": "The original partition."},
        dead_letters.OFFSET: {"type": "string", "description": "The original offset."},
        dead_letters.CONSUMER: {"type": "string", "description": "The consumer group."},
    },
    "required": [
        dead_letters.REASON,
        dead_letters.REASON_KIND,
        dead_letters.TOPIC,
        dead_letters.PARTITION,
        dead_letters.OFFSET,
        dead_letters.CONSUMER,
    ],
}

_CORRELATION = {
    "description": "The correlation id travels in the `correlation-id` record header.",
    "location": f"$message.header#/{tracing.CORRELATION_ID}",
}


@functools.cache
def event_envelope(event_type: str) -> type[CloudEvent]:
    """The CloudEvent of one event type of the contract, as a pydantic model: its `type`
    fixed, its `data` the payload model. Only used to describe events, never to parse them."""
    payload = EVENT_TYPES[event_type]
    fixed_type: Any = Literal.__getitem__(event_type)
    fixed_version: Any = Literal.__getitem__(payload.data_version)
    model: type[CloudEvent] = create_model(
        f"{event_type}Event",
        __base__=CloudEvent,
        __doc__=f"A CloudEvent whose `data` is a {event_type} payload.",
        type=(fixed_type, ...),
        dataversion=(fixed_version, payload.data_version),
        data=(payload, ...),
    )
    return model


def envelopes_of(event_types: Collection[str]) -> Any:
    """One envelope model, or the union of several: a type annotation FastStream can use."""
    models = tuple(event_envelope(event_type) for event_type in event_types)
    return models[0] if len(models) == 1 else Union[models]  # noqa: UP007


def declare_output(broker: KafkaBroker, topic: Topic, *, name: str, service: str) -> None:
    """Describe a topic the service publishes its events to (through its outbox)."""
    broker.publisher(
        name,
        title=name,
        description=(
            f"Events the {service} service publishes (through its outbox, keyed by "
            f"`{topic.key}`): {', '.join(topic.event_types)}."
        ),
        schema=envelopes_of(topic.event_types),
    )


def declare_dead_letters(broker: KafkaBroker, *, name: str, service: str) -> None:
    """Describe the dead-letter twin of a topic the service consumes."""
    dead_letter = name + DEAD_LETTER_SUFFIX
    broker.publisher(
        dead_letter,
        title=dead_letter,
        description=(
            f"Records of `{name}` the {service} service could never process, byte for byte "
            "(they may not be JSON at all), with `dlq-*` headers saying why and where from."
        ),
        schema=bytes,
    )


class AsyncApiDocument:
    """The document of one runtime, built on first use (the broker's subscribers and
    publishers are all declared by the time the app serves requests)."""

    def __init__(
        self,
        broker: KafkaBroker,
        *,
        title: str,
        version: str,
        description: str,
        consumed: Callable[[], Mapping[str, Collection[str]]],
    ) -> None:
        self.broker = broker
        self.title = title
        self.version = version
        self.description = description
        #: Topic name -> the event types the consumer handles there (asked when building).
        self.consumed = consumed
        self._document: dict[str, Any] | None = None

    def to_jsonable(self) -> dict[str, Any]:
        if self._document is None:
            specification = AsyncAPI(
                self.broker,
                title=self.title,
                version=self.version,
                description=self.description,
            ).to_specification()
            document: dict[str, Any] = specification.to_jsonable()
            _describe_consumed_events(document, self.consumed())
            _describe_headers(document)
            self._document = document
        return self._document

    def to_json(self) -> str:
        return json.dumps(self.to_jsonable())

    def to_yaml(self) -> str:
        # Through JSON: shared sub-objects would otherwise become YAML anchors and aliases.
        return yaml.safe_dump(json.loads(self.to_json()), sort_keys=False, allow_unicode=True)


def asyncapi_router(document: AsyncApiDocument) -> APIRouter:
    router = APIRouter(tags=["operations"])

    @router.get("/asyncapi.json", summary="The AsyncAPI document: topics consumed and published")
    async def asyncapi_json() -> JSONResponse:
        return JSONResponse(document.to_jsonable())

    @router.get("/asyncapi.yaml", response_class=Response, summary="The same, as YAML")
    async def asyncapi_yaml() -> Response:
        return Response(document.to_yaml(), media_type="application/yaml")

    @router.get("/asyncapi", response_class=HTMLResponse, include_in_schema=False)
    async def asyncapi_html() -> HTMLResponse:
        return HTMLResponse(asyncapi_page(document.title, document.to_json()))

    return router


def _describe_consumed_events(
    document: dict[str, Any], consumed: Mapping[str, Collection[str]]
) -> None:
    """Give each receive operation's message the envelopes of the events handled there."""
    schemas: dict[str, Any] = document.setdefault("components", {}).setdefault("schemas", {})
    replaced: set[str] = set()
    for operation in document.get("operations", {}).values():
        if operation.get("action") != "receive":
            continue
        channel = _follow(document, operation["channel"]["$ref"])
        event_types = consumed.get(channel.get("address", ""))
        if not event_types:
            continue
        payload = _payload_schema(event_types, schemas)
        for reference in channel.get("messages", {}).values():
            message = _follow(document, reference["$ref"])
            previous = message.get("payload", {}).get("$ref")
            if previous:
                replaced.add(previous)
            message["payload"] = payload
    # FastStream's "binary" schema of the raw subscriber body, now referenced by nothing.
    text = json.dumps(document)
    for reference in replaced:
        if json.dumps(reference) not in text:
            schemas.pop(_pointer(reference)[-1], None)


def _payload_schema(event_types: Collection[str], schemas: dict[str, Any]) -> dict[str, Any]:
    models = [event_envelope(event_type) for event_type in sorted(event_types)]
    references, top = models_json_schema(
        [(model, "validation") for model in models], ref_template=_SCHEMA_REF
    )
    schemas.update(top.get("$defs", {}))
    refs = [dict(references[(model, "validation")]) for model in models]
    return refs[0] if len(refs) == 1 else {"oneOf": refs}


def _describe_headers(document: dict[str, Any]) -> None:
    for channel in document.get("channels", {}).values():
        is_dead_letter = channel.get("address", "").endswith(DEAD_LETTER_SUFFIX)
        for reference in channel.get("messages", {}).values():
            message = _follow(document, reference["$ref"])
            message["headers"] = DEAD_LETTER_HEADERS if is_dead_letter else EVENT_HEADERS
            message["correlationId"] = _CORRELATION


def _follow(document: dict[str, Any], reference: str) -> dict[str, Any]:
    node: Any = document
    for part in _pointer(reference):
        node = node[part]
    result: dict[str, Any] = node
    return result


def _pointer(reference: str) -> list[str]:
    """The keys of a local JSON pointer reference (`#/a/b`), unescaped."""
    return [
        unquote(part).replace("~1", "/").replace("~0", "~")
        for part in reference.removeprefix("#/").split("/")
    ]
