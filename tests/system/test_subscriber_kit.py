"""The subscriber kit as an analytics consumer uses it: `examples/usage_subscriber.py`,
connected as the `subscriber` principal, reads `analytics.session-usage` from the beginning
and ends with the latest usage of every client whose workouts were logged (what the usage
endpoint says), both called as functions and run as its users run it. What the principal may
not do (write any topic, read another, use a group not named `subscriber…`) is proven for
every principal by test_kafka_access.py."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import sys
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from contracts.services import KAFKA_BOOTSTRAP_ENV
from testkit.helpers import eventually

from .conftest import Launch
from .platform import IsolatedPlatform

pytestmark = pytest.mark.infra

ROOT = Path(__file__).resolve().parents[2]
SUBSCRIBER = ROOT / "examples" / "usage_subscriber.py"
CLIENTS = (5101, 5102, 5103)
#: Long enough for any wait here: none is timed.
PATIENCE = 60.0


def load_example() -> ModuleType:
    """The example as a module, for its functions."""
    spec = importlib.util.spec_from_file_location("usage_subscriber", SUBSCRIBER)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


example = load_example()


@pytest.fixture
async def platform(launch: Launch) -> AsyncIterator[IsolatedPlatform]:
    """Workouts and analytics, each client's workouts logged through the API (the last of
    each client cancelled again, so usage went up and down), and all of it announced."""
    async with launch(services=["workouts", "analytics"]) as started:
        async with started.http() as staff:
            workouts = f"{started.url('workouts')}/api/workout/sessions"
            for number, client in enumerate(CLIENTS):
                for title in ("Run", "Swim", "Lift")[: number + 1]:
                    body = {"userId": client, "title": title, "status": "completed"}
                    response = await staff.post(workouts, json=body)
                    assert response.status_code == 201, response.text
                last = response.json()["id"]
                cancelled = await staff.patch(f"{workouts}/{last}", json={"status": "cancelled"})
                assert cancelled.status_code == 200, cancelled.text
        await started.settled(within=PATIENCE)
        yield started


def subscriber_environment(platform: IsolatedPlatform) -> dict[str, str]:
    """What `eval "$(uv run ops env --as subscriber)"` gives a shell, for this platform."""
    return {
        **os.environ,
        **platform.principal_environment("subscriber"),
        KAFKA_BOOTSTRAP_ENV: platform.kafka_bootstrap,
        "KAFKA_TOPIC_PREFIX": platform.topic_prefix,
    }


async def usage_endpoint(platform: IsolatedPlatform) -> dict[int, dict[str, Any]]:
    async with platform.http() as staff:
        answers = {}
        for client in CLIENTS:
            url = f"{platform.url('analytics')}/api/analytics/{client}/session-usage"
            response = await staff.get(url)
            assert response.status_code == 200, response.text
            answers[client] = response.json()
    return answers


def counts(usage: Any) -> tuple[int, int, int]:
    return (usage.total, usage.solo, usage.trainer_led)


async def test_the_subscriber_ends_with_each_clients_latest_usage(
    platform: IsolatedPlatform,
) -> None:
    expected = {
        client: (body["total"], body["solo"]["count"], body["trainerLed"]["count"])
        for client, body in (await usage_endpoint(platform)).items()
    }
    assert expected == {5101: (0, 0, 0), 5102: (1, 1, 0), 5103: (2, 2, 0)}
    latest = example.LatestUsage()
    updates: list[Any] = []
    follower = asyncio.create_task(
        example.follow(
            subscriber_environment(platform),
            name=f"kit-{uuid.uuid4().hex[:6]}",
            latest=latest,
            on_update=updates.append,
        )
    )

    def caught_up() -> bool:
        held = {client: counts(usage) for client, usage in latest.by_client.items()}
        return all(held.get(client) == value for client, value in expected.items())

    try:
        await eventually(caught_up, within=PATIENCE)
    finally:
        follower.cancel()
    assert sorted(latest.by_client) == sorted(CLIENTS)
    # Each update is what was kept, in the order read: the last of each client is its latest.
    last_update = {usage.user_id: usage for usage in updates}
    assert last_update == latest.by_client


async def test_the_script_prints_each_clients_latest_usage_last(
    platform: IsolatedPlatform,
) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(SUBSCRIBER),
        "--name",
        f"kit-{uuid.uuid4().hex[:6]}",
        "--until-idle",
        "3",
        env=subscriber_environment(platform),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    async with asyncio.timeout(PATIENCE):
        output, _ = await process.communicate()
    printed = output.decode().splitlines()

    assert process.returncode == 0, printed
    last_line = {
        int(line.split(":")[0].removeprefix("client ")): line
        for line in printed
        if line.startswith("client ")
    }
    assert last_line[5101].startswith("client 5101: 0 workouts (0 solo, 0 trainer-led)")
    assert last_line[5102].startswith("client 5102: 1 workouts (1 solo, 0 trainer-led)")
    assert last_line[5103].startswith("client 5103: 2 workouts (2 solo, 0 trainer-led)")
    assert printed[-1] == f"{len(CLIENTS)} clients"


# --- keeping the latest, without I/O -------------------------------------------------------


def announcement(user_id: int, total: int, as_of: datetime) -> bytes:
    """A SessionUsageUpdated record value, as analytics publishes it (solo workouts only)."""
    return json.dumps(
        {
            "specversion": "1.0",
            "id": str(uuid.uuid4()),
            "source": "/swanstudios/analytics",
            "type": "SessionUsageUpdated",
            "time": as_of.isoformat(),
            "data": {
                "userId": user_id,
                "total": total,
                "solo": {"count": total, "percentage": 100.0 if total else 0.0},
                "trainerLed": {"count": 0, "percentage": 0.0},
                "credits": {
                    "total": 10,
                    "used": 0,
                    "remaining": 10,
                    "held": 0,
                    "expired": 0,
                    "available": 10,
                },
                "asOf": as_of.isoformat(),
                "someFieldOfLater": {"ignored": True},
            },
        }
    ).encode()


def test_a_history_announced_again_changes_nothing_held() -> None:
    """A rebuild of analytics announces each client's history again, with new event ids:
    the usage held stays the latest (by `asOf`) until the rebuilt latest arrives."""
    start = datetime(2026, 3, 2, 9, tzinfo=UTC)
    latest = example.LatestUsage()
    for total in (1, 2, 3):
        latest.take(announcement(5101, total, start + timedelta(hours=total)))

    assert latest.take(announcement(5101, 1, start + timedelta(hours=1))) is None
    assert latest.by_client[5101].total == 3
    assert latest.take(announcement(5101, 3, start + timedelta(hours=3))) is not None
    assert latest.take(announcement(5102, 1, start)) is not None
    assert sorted(latest.by_client) == [5101, 5102]


def test_records_that_are_no_usage_are_passed_over() -> None:
    latest = example.LatestUsage()
    assert latest.take(None) is None
    assert latest.take(json.dumps({"type": "SomethingElse", "data": {}}).encode()) is None
    assert latest.by_client == {}


def test_the_group_is_named_for_the_subscriber_and_sasl_names_the_principal() -> None:
    settings = example.consumer_settings(
        {
            "KAFKA_BOOTSTRAP_SERVERS": "broker:9092",
            "KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
            "KAFKA_SASL_USERNAME": "subscriber",
            "KAFKA_SASL_PASSWORD": "secret",
        },
        "dashboard",
    )
    assert settings["group_id"] == "subscriber.dashboard"
    assert settings["sasl_plain_username"] == "subscriber"
    assert settings["sasl_mechanism"] == "SCRAM-SHA-512"
    assert settings["enable_auto_commit"] is False
