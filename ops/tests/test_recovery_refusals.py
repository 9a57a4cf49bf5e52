"""Replay and rebuild refuse, in one line and before stopping anything, when Kafka or the
database does not answer, and a rebuild does not drop a database without a confirmation."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from contracts.services import CREDITS
from ops import databases, recovery
from ops.cli import app
from ops.local.errors import PlatformError
from ops.recovery import ServiceControl, Target

pytestmark = pytest.mark.infra

ALEMBIC_INI = Path(__file__).resolve().parents[2] / "services" / "credits" / "alembic.ini"


def closed_port() -> int:
    """A port where nothing listens."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class RecordingControl:
    def __init__(self) -> None:
        self.calls: list[str] = []

    def control(self) -> ServiceControl:
        async def stop() -> None:
            self.calls.append("stop")

        async def start() -> None:
            self.calls.append("start")

        return ServiceControl(stop=stop, start=start)


def unreachable_database() -> str:
    return f"postgresql+psycopg://credits:credits@127.0.0.1:{closed_port()}/credits"


@pytest.mark.parametrize("operation", ["replay", "rebuild"])
async def test_kafka_not_answering_is_refused_before_the_service_is_stopped(
    operation: str,
) -> None:
    recorder = RecordingControl()
    target = Target("credits", f"127.0.0.1:{closed_port()}", unreachable_database())

    with pytest.raises(PlatformError) as refused:
        if operation == "replay":
            await recovery.replay(target, recorder.control())
        else:
            admin = databases.own_role(target.database_url)
            await recovery.rebuild(target, recorder.control(), admin, ALEMBIC_INI)

    assert str(refused.value).startswith(f"Kafka at {target.bootstrap} does not answer")
    assert recorder.calls == []


@pytest.mark.parametrize("operation", ["replay", "rebuild"])
async def test_a_database_not_answering_is_refused_before_the_service_is_stopped(
    operation: str, kafka_bootstrap: str
) -> None:
    recorder = RecordingControl()
    target = Target("credits", kafka_bootstrap, unreachable_database())

    with pytest.raises(PlatformError) as refused:
        if operation == "replay":
            await recovery.replay(target, recorder.control())
        else:
            admin = databases.own_role(target.database_url)
            await recovery.rebuild(target, recorder.control(), admin, ALEMBIC_INI)

    message = str(refused.value)
    assert "credits database" in message
    assert "does not answer" in message
    assert "\n" not in message
    assert recorder.calls == []


async def test_a_database_the_role_does_not_own_is_refused_before_anything_stops(
    kafka_bootstrap: str, servers: Any
) -> None:
    recorder = RecordingControl()
    # Someone else's database, as the service's owner sees it: the server's own `postgres`.
    foreign = servers.owner_url(CREDITS).rsplit("/", 1)[0] + "/postgres"
    target = Target("credits", kafka_bootstrap, foreign)

    with pytest.raises(PlatformError) as refused:
        await recovery.rebuild(target, recorder.control(), databases.own_role(foreign), ALEMBIC_INI)

    message = str(refused.value)
    assert message.startswith("the credits database postgres belongs to ")
    assert message.endswith(", not to credits: ask its owner to rebuild it")
    assert recorder.calls == []


def run(arguments: list[str], env: Mapping[str, str]) -> Result:
    return CliRunner().invoke(app, arguments, env=dict(env))


async def cli(*arguments: str, **env: str) -> Result:
    # The command runs its own event loop: in a thread, away from the test's.
    return await asyncio.to_thread(run, list(arguments), env)


@pytest.mark.parametrize(
    "command",
    [
        ["replay", "credits"],
        ["replay", "credits", "--from", "2026-01-15", "--topic", "booking.sessions"],
        ["rebuild", "credits", "--yes"],
    ],
)
async def test_the_command_line_says_why_in_one_line_and_exits_1(command: list[str]) -> None:
    bootstrap = f"127.0.0.1:{closed_port()}"

    result = await cli(*command, KAFKA_BOOTSTRAP_SERVERS=bootstrap)

    assert result.exit_code == 1
    assert result.output.startswith(f"error: Kafka at {bootstrap} does not answer")
    assert result.output.count("\n") == 1


@pytest.mark.parametrize(
    ("option", "refusal"),
    [
        (
            ["--topic", "analytics.session-usage"],
            "credits does not consume analytics.session-usage",
        ),
        (["--from", "last tuesday"], "--from takes an RFC 3339 time with its zone"),
    ],
)
async def test_a_replay_of_what_cannot_be_replayed_is_refused_in_one_line_before_kafka_is_asked(
    option: list[str], refusal: str
) -> None:
    # Kafka does not answer either: the command never gets as far as asking it.
    result = await cli(
        "replay", "credits", *option, KAFKA_BOOTSTRAP_SERVERS=f"127.0.0.1:{closed_port()}"
    )

    assert result.exit_code == 1
    assert result.output.startswith(f"error: {refusal}")
    assert result.output.count("\n") == 1


async def test_a_topic_the_service_does_not_consume_is_refused_before_the_service_is_stopped(
    kafka_bootstrap: str,
) -> None:
    recorder = RecordingControl()
    target = Target("credits", kafka_bootstrap, unreachable_database())

    with pytest.raises(PlatformError, match=r"^credits does not consume analytics\.session-usage"):
        await recovery.replay(target, recorder.control(), topic="analytics.session-usage")

    assert recorder.calls == []


async def test_a_rebuild_that_cannot_ask_refuses_without_yes(
    kafka_bootstrap: str, servers: Any
) -> None:
    # Kafka and the database answer: only the confirmation is missing (stdin is no terminal).
    result = await cli(
        "rebuild",
        "credits",
        KAFKA_BOOTSTRAP_SERVERS=kafka_bootstrap,
        CREDITS_DATABASE_URL=servers.database_url(CREDITS),
    )

    assert result.exit_code == 1
    assert result.output == (
        "error: refusing to drop the credits database credits without confirmation: pass "
        "--yes (make rebuild YES=1)\n"
    )


def test_an_unknown_service_is_a_usage_error() -> None:
    result = CliRunner().invoke(app, ["replay", "billing"])

    assert result.exit_code == 2
