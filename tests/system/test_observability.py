"""Seeing inside the running platform: a request's trace and correlation id follow the events
it causes from service to service, every log line is JSON naming them, `/metrics` counts the
work done, and each service's AsyncAPI document lists what it consumes and publishes."""

from __future__ import annotations

import importlib
import json
import random
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from httpx import ASGITransport
from prometheus_client.parser import text_string_to_metric_families

from contracts.events import PackagePurchased
from contracts.services import Service
from servicekit.tracing import TraceParent
from testkit.helpers import Record, eventually, read_topic

from .conftest import Launch
from .platform import SERVICE_NAMES, IsolatedPlatform

pytestmark = pytest.mark.infra

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


class VerbosePlatform(IsolatedPlatform):
    """Services that log at INFO: each applied event says so."""

    def environment(self, service: Service, port: int) -> dict[str, str]:
        env = super().environment(service, port)
        env[service.env_prefix + "LOG_LEVEL"] = "INFO"
        return env


@pytest.fixture
async def platform(launch: Launch) -> AsyncIterator[IsolatedPlatform]:
    async with launch(kind=VerbosePlatform) as started:
        yield started


async def scrape(url: str) -> Samples:
    async with httpx.AsyncClient(timeout=10) as http:
        response = await http.get(f"{url}/metrics")
    response.raise_for_status()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def counted(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def log_lines(platform: IsolatedPlatform, name: str) -> list[dict[str, Any]]:
    """Every line the service's process wrote, each parsed as JSON (failing on any other)."""
    text = platform.processes[name][0].log.read_text()
    return [json.loads(line) for line in text.splitlines() if line]


def headers_of(record: Record) -> dict[str, str]:
    return {name: value.decode() for name, value in record.headers}


def parent_of(record: Record) -> TraceParent:
    parent = TraceParent.parse(headers_of(record).get("traceparent"))
    assert parent is not None, record.headers
    return parent


def event_of(record: Record) -> dict[str, Any]:
    """The CloudEvent a record holds; empty for the poison this test sends too."""
    try:
        event: dict[str, Any] = json.loads(record.value)
    except ValueError:
        return {}
    return event


async def read_event(
    platform: IsolatedPlatform, topic: str, matches: Callable[[dict[str, Any]], bool]
) -> Record:
    records = await read_topic(
        platform.kafka_bootstrap,
        platform.topic_prefix + topic,
        until=lambda records: any(matches(event_of(r)) for r in records),
    )
    [found] = [record for record in records if matches(event_of(record))]
    return found


async def test_a_requests_trace_follows_its_events_across_services_into_logs_and_metrics(
    platform: IsolatedPlatform,
) -> None:
    client = random.randint(10**6, 10**7)
    prefix = platform.topic_prefix
    await platform.publish(
        [
            PackagePurchased(
                purchase_id=uuid.uuid4().hex,
                user_id=client,
                sessions=5,
                purchased_at=datetime.now(UTC),
            )
        ]
    )
    booking_trace, completion_trace = TraceParent.start(), TraceParent.start()
    booking_correlation = f"booking-{uuid.uuid4().hex}"
    completion_correlation = f"completion-{uuid.uuid4().hex}"
    sessions = f"{platform.url('booking')}/api/sessions"
    async with platform.http() as http:
        booked = await http.post(
            sessions,
            json={
                "userId": client,
                "trainerId": 456,
                "sessionDate": (datetime.now(UTC) + timedelta(days=1)).isoformat(),
                # Staff book at once, before booking may have heard of the purchase.
                "allowWithoutCredit": True,
            },
            headers={"traceparent": booking_trace.header, "X-Correlation-Id": booking_correlation},
        )
        assert booked.status_code == 201, booked.text
        assert booked.headers["x-correlation-id"] == booking_correlation
        session_id = booked.json()["id"]
        started = await http.patch(f"{sessions}/{session_id}", json={"status": "in_progress"})
        assert started.status_code == 200, started.text
        completed = await http.patch(
            f"{sessions}/{session_id}",
            json={"status": "completed"},
            headers={
                "traceparent": completion_trace.header,
                "X-Correlation-Id": completion_correlation,
            },
        )
        assert completed.status_code == 200, completed.text
    await platform.publish_raw("booking.sessions", b"not json")
    await platform.settled()

    def about_the_session(kind: str) -> Callable[[dict[str, Any]], bool]:
        return lambda event: (
            event.get("type") == kind and event["data"].get("sessionId") == session_id
        )

    # The request's trace and correlation id, in a span of booking's own, reach the topic...
    session_booked = await read_event(
        platform, "booking.sessions", about_the_session("SessionBooked")
    )
    assert parent_of(session_booked).trace_id == booking_trace.trace_id
    assert parent_of(session_booked).span_id != booking_trace.span_id
    assert headers_of(session_booked)["correlation-id"] == booking_correlation
    session_completed = await read_event(
        platform, "booking.sessions", about_the_session("SessionCompleted")
    )
    assert parent_of(session_completed).trace_id == completion_trace.trace_id
    # ...and the events the consumers cause, each hop in a span of its own.
    deducted = await read_event(
        platform, "credits.ledger", about_the_session("SessionCreditDeducted")
    )
    assert parent_of(deducted).trace_id == completion_trace.trace_id
    assert parent_of(deducted).span_id != parent_of(session_completed).span_id
    assert headers_of(deducted)["correlation-id"] == completion_correlation
    usage_records = await read_topic(
        platform.kafka_bootstrap,
        prefix + "analytics.session-usage",
        until=lambda records: any(
            parent_of(r).trace_id == completion_trace.trace_id for r in records
        ),
    )
    for usage in usage_records:
        if parent_of(usage).trace_id == completion_trace.trace_id:
            assert parent_of(usage).span_id != parent_of(deducted).span_id
            assert headers_of(usage)["correlation-id"] == completion_correlation

    # Every line of every process is a JSON object naming its service.
    logs = {name: log_lines(platform, name) for name in SERVICE_NAMES}
    for name, lines in logs.items():
        assert lines, f"{name} logged nothing"
        for line in lines:
            assert {"time", "level", "logger", "message"} <= set(line), line
            assert line["service"] == name
    [access] = [
        line
        for line in logs["booking"]
        if line["logger"] == "uvicorn.access" and line.get("correlation_id") == booking_correlation
    ]
    assert "POST /api/sessions" in access["message"]
    assert access["trace_id"] == booking_trace.trace_id
    [credits_applied] = [
        line
        for line in logs["credits"]
        if line.get("event_id") == event_of(session_completed)["id"]
        and line["message"].endswith("applied SessionCompleted")
    ]
    assert credits_applied["event_type"] == "SessionCompleted"
    assert credits_applied["trace_id"] == completion_trace.trace_id
    assert credits_applied["span_id"] == parent_of(deducted).span_id
    assert credits_applied["correlation_id"] == completion_correlation
    [booking_applied] = [
        line
        for line in logs["booking"]
        if line.get("event_id") == event_of(deducted)["id"]
        and line["message"].endswith("applied SessionCreditDeducted")
    ]
    assert booking_applied["event_type"] == "SessionCreditDeducted"
    assert booking_applied["trace_id"] == completion_trace.trace_id

    # What each service did, counted.
    metrics = {name: await scrape(platform.url(name)) for name in SERVICE_NAMES}
    consumed, published = "platform_events_consumed_total", "platform_events_published_total"
    dead = "platform_events_dead_lettered_total"
    booking, credits = metrics["booking"], metrics["credits"]
    sessions_topic, ledger = prefix + "booking.sessions", prefix + "credits.ledger"
    for kind in ("SessionBooked", "SessionStarted", "SessionCompleted"):
        assert counted(booking, published, topic=sessions_topic, event_type=kind) == 1
    own_event = {"topic": sessions_topic, "event_type": "SessionBooked", "outcome": "duplicate"}
    assert counted(booking, consumed, **own_event) == 1
    deduction = {"topic": ledger, "event_type": "SessionCreditDeducted", "outcome": "applied"}
    assert counted(booking, consumed, **deduction) == 1
    assert counted(metrics["analytics"], consumed, **deduction) == 1
    purchase = {"topic": prefix + "commerce.packages", "event_type": "PackagePurchased"}
    assert counted(credits, consumed, **purchase, outcome="applied") == 1
    for kind in ("SessionBooked", "SessionCompleted"):
        applied = {"topic": sessions_topic, "event_type": kind, "outcome": "applied"}
        assert counted(credits, consumed, **applied) == 1
        assert counted(credits, "platform_handler_duration_seconds_count", event_type=kind) >= 1
    for kind in ("CreditsGranted", "SessionCreditDeducted"):
        assert counted(credits, published, topic=ledger, event_type=kind) == 1
    usage_topic = prefix + "analytics.session-usage"
    usage_published = {"topic": usage_topic, "event_type": "SessionUsageUpdated"}
    assert counted(metrics["analytics"], published, **usage_published) >= 1
    unreadable = {"topic": sessions_topic, "event_type": "unknown", "outcome": "dead-lettered"}
    for name in SERVICE_NAMES:  # every service reads booking.sessions
        assert counted(metrics[name], consumed, **unreadable) == 1
        assert counted(metrics[name], dead, topic=sessions_topic, reason="not-json") == 1
    # Analytics set aside that record and nothing else.
    assert all("not-json" in str(key) for key in metrics["analytics"] if key[0] == dead)
    for name, samples in metrics.items():
        assert counted(samples, "platform_outbox_backlog_rows") == 0, name
        assert counted(samples, "platform_outbox_oldest_age_seconds") == 0, name

    async def every_partition_caught_up() -> bool:
        for name in SERVICE_NAMES:
            inputs = importlib.import_module(f"{name}.main").INPUT_TOPICS
            lag = {
                (labels["topic"], labels["partition"]): value
                for (metric, key), value in (await scrape(platform.url(name))).items()
                if metric == "platform_consumer_lag_records"
                for labels in [dict(key)]
            }
            expected = {
                (prefix + topic.name, str(partition))
                for topic in inputs
                for partition in range(topic.partitions)
            }
            if set(lag) != expected or any(lag.values()):
                return False
        return True

    await eventually(every_partition_caught_up)

    # The running process serves its AsyncAPI document, with its topics behind the prefix.
    async with httpx.AsyncClient(timeout=10) as http:
        document = (await http.get(f"{platform.url('booking')}/asyncapi.json")).json()
    assert {channel["address"] for channel in document["channels"].values()} == {
        sessions_topic,
        ledger,
        sessions_topic + ".dlq",
        ledger + ".dlq",
    }


#: What each service consumes and publishes, as the README's table says.
TOPICS_OF = {
    "booking": ({"booking.sessions", "credits.ledger"}, {"booking.sessions"}),
    "workouts": ({"booking.sessions", "workouts.workout-sessions"}, {"workouts.workout-sessions"}),
    "credits": (
        {"booking.sessions", "workouts.workout-sessions", "commerce.packages", "credits.ledger"},
        {"credits.ledger"},
    ),
    "analytics": (
        {"booking.sessions", "workouts.workout-sessions", "credits.ledger"},
        {"analytics.session-usage"},
    ),
}


@pytest.mark.parametrize("name", SERVICE_NAMES)
async def test_each_service_documents_the_topics_it_consumes_and_publishes(name: str) -> None:
    settings = importlib.import_module(f"{name}.settings").Settings()
    app = importlib.import_module(f"{name}.main").create_app(settings)
    transport = ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=f"http://{name}") as http:
        document = (await http.get("/asyncapi.json")).json()
    await app.state.runtime.database.dispose()

    channels = document["channels"]
    by_action: dict[str, set[str]] = {"receive": set(), "send": set()}
    for operation in document["operations"].values():
        channel = channels[operation["channel"]["$ref"].rsplit("/", 1)[-1]]
        by_action[operation["action"]].add(channel["address"])
    consumes, publishes = TOPICS_OF[name]
    assert by_action["receive"] == consumes
    # Its outbox's topics, and the dead-letter twin of each topic it consumes.
    assert by_action["send"] == publishes | {topic + ".dlq" for topic in consumes}
