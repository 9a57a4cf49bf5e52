"""Failures tell the operator what to do, in one line, and the CLI prints no traceback."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ops.cli import app
from ops.local import errors, kafka, platform, postgres
from ops.local.config import KafkaSettings, config_from_env
from ops.local.paths import Paths
from ops.local.report import silent


@pytest.fixture
def held_port() -> Iterator[int]:
    """A port some other program (this test) listens on."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        yield server.getsockname()[1]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_a_stranger_on_the_kafka_port_is_named_with_its_pid(
    tmp_path: Path, held_port: int
) -> None:
    config = config_from_env({}, Paths(tmp_path), kafka_port=held_port, kafka_controller_port=0)

    with pytest.raises(errors.PlatformError) as raised:
        await kafka.ensure_kafka(config, silent)

    message = str(raised.value)
    assert message.startswith(f"port {held_port} (needed by Kafka) is already taken by ")
    assert f"pid {os.getpid()} (" in message
    assert "\n" not in message


def test_a_stranger_on_the_postgres_port_is_named_with_the_way_out(
    tmp_path: Path, held_port: int
) -> None:
    config = config_from_env({"LOCAL_POSTGRES_PORT": str(held_port)}, Paths(tmp_path))

    with pytest.raises(errors.PlatformError) as raised:
        postgres.ensure_postgres(config, silent)

    assert f"port {held_port} (needed by PostgreSQL) is already taken by pid {os.getpid()}" in str(
        raised.value
    )
    assert str(raised.value).endswith("set LOCAL_POSTGRES_PORT to a free port")


async def test_kafka_that_never_answers_times_out_naming_the_step_and_the_log(
    tmp_path: Path,
) -> None:
    port = _free_port()
    settings = KafkaSettings(f"127.0.0.1:{port}", port, port + 1, named_in_env=False)
    log = tmp_path / "kafka.log"

    with pytest.raises(errors.PlatformError) as raised:
        await kafka.wait_until_ready(settings, log, None, within=0.5)

    assert str(raised.value) == (
        f"Kafka readiness at 127.0.0.1:{port} did not finish within 0.5 s: read {log}"
    )


def test_messages_for_missing_tools_name_the_package_to_install() -> None:
    assert "apt-get install openjdk-17-jre-headless" in str(errors.java_missing())
    assert "apt-get install openjdk-17-jre-headless" in str(errors.java_too_old("11"))
    assert "apt-get install maven" in str(errors.maven_missing())


def test_step_messages_name_the_step_and_the_log_to_read() -> None:
    log = Path(".local/log/kafka.log")

    assert str(errors.step_timed_out("Kafka storage format", 120, log)) == (
        "Kafka storage format did not finish within 120 s: read .local/log/kafka.log"
    )
    assert str(errors.step_failed("PostgreSQL initdb", log)) == (
        "PostgreSQL initdb failed: read .local/log/kafka.log"
    )


def test_the_cli_prints_one_line_and_exits_non_zero_on_a_platform_error() -> None:
    result = CliRunner().invoke(app, ["up", "--infra-only"], env={"LOCAL_POSTGRES_PORT": "five"})

    assert result.exit_code == 1
    assert result.stderr == "error: LOCAL_POSTGRES_PORT='five' is not a TCP port number\n"
    assert "Traceback" not in result.output


def test_the_cli_env_command_prints_shell_exports() -> None:
    result = CliRunner().invoke(app, ["env"], env={"KAFKA_BOOTSTRAP_SERVERS": "k:1"})

    assert result.exit_code == 0
    assert result.stdout.splitlines()[0] == "export KAFKA_BOOTSTRAP_SERVERS=k:1"
    # Kafka, four databases as their runtime and owner roles see them, the local roles'
    # password file, and the identity provider's issuer, audience and key set.
    assert len(result.stdout.splitlines()) == 13


async def test_when_kafka_and_postgresql_both_fail_both_reasons_are_told_in_one_line(
    tmp_path: Path, held_port: int
) -> None:
    config = config_from_env(
        {"LOCAL_POSTGRES_PORT": str(held_port)},
        Paths(tmp_path),
        kafka_port=held_port,
        kafka_controller_port=0,
    )

    with pytest.raises(errors.PlatformError) as raised:
        await platform.start_infrastructure(config, silent)

    message = str(raised.value)
    assert "\n" not in message
    assert f"port {held_port} (needed by Kafka)" in message
    assert f"; port {held_port} (needed by PostgreSQL)" in message
