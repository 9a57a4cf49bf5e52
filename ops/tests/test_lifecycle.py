"""A whole life of the local infrastructure, on a second stack of its own (its own
directory and ports, so the stack the rest of the suite uses is never stopped): start,
start again, stop, start again with the data intact, stop."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator

import psycopg
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from contracts.services import Service
from contracts.topics import ALL_TOPICS, BOOKING_SESSIONS
from ops.local import kafka, platform, postgres
from ops.local.config import PlatformConfig
from ops.local.paths import Paths, repository_root
from ops.local.processes import is_alive, port_is_free, running_pid
from ops.local.report import silent
from ops.local.scratch import remove, scratch_config, scratch_paths
from ops.local.secrets import RolePasswords, ensure_kafka_credentials
from servicekit.kafka import client_options
from servicekit.urls import libpq_url

pytestmark = pytest.mark.infra


@pytest.fixture
async def scratch(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[PlatformConfig]:
    paths = scratch_paths(Paths(repository_root()), f"lifecycle-{uuid.uuid4().hex[:8]}", silent)
    config = scratch_config(paths)
    # This stack's broker knows its own principals: the test connects as its `ops`.
    for name, value in ensure_kafka_credentials(paths).environment("ops").items():
        monkeypatch.setenv(name, value)
    yield config
    platform.down(config, silent)
    remove(paths)


def _booking_connection(config: PlatformConfig) -> psycopg.Connection[tuple[object, ...]]:
    """As booking's owner, with the password this stack made for it."""
    url = config.databases[0].owner_url
    return psycopg.connect(
        libpq_url(url), autocommit=True, connect_timeout=5, passfile=str(config.paths.pgpass)
    )


def _pids(config: PlatformConfig) -> tuple[int | None, int | None]:
    return (
        running_pid(kafka.process_spec(config.paths)),
        running_pid(postgres.process_spec(config.paths)),
    )


async def _publish(config: PlatformConfig, value: bytes) -> None:
    producer = AIOKafkaProducer(
        **client_options(), bootstrap_servers=config.kafka.bootstrap, acks="all"
    )
    await producer.start()
    try:
        await producer.send_and_wait(BOOKING_SESSIONS.name, value, key=b"1")
    finally:
        await producer.stop()


async def _read_all(config: PlatformConfig) -> list[bytes]:
    consumer = AIOKafkaConsumer(
        BOOKING_SESSIONS.name,
        **client_options(),
        bootstrap_servers=config.kafka.bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        batches = await consumer.getmany(timeout_ms=10_000)
    finally:
        await consumer.stop()
    return [record.value for records in batches.values() for record in records]


async def test_up_up_down_up_keeps_processes_single_and_data_intact(
    scratch: PlatformConfig,
) -> None:
    await platform.up(scratch, silent, {}, infra_only=True)
    kafka_pid, postgres_pid = _pids(scratch)
    assert kafka_pid is not None
    assert postgres_pid is not None
    with _booking_connection(scratch) as connection:
        connection.execute("create table kept (id int primary key)")
        connection.execute("insert into kept values (42)")
    await _publish(scratch, b"kept")

    again: list[str] = []
    started = time.monotonic()
    await platform.up(scratch, again.append, {}, infra_only=True)
    assert time.monotonic() - started < 10
    assert _pids(scratch) == (kafka_pid, postgres_pid)
    assert sorted(again) == [
        f"Kafka: already running (pid {kafka_pid})",
        f"PostgreSQL: already running (pid {postgres_pid})",
        f"Topics: all {len(ALL_TOPICS)} already there",
    ]

    stopped: list[str] = []
    platform.down(scratch, stopped.append)
    assert stopped == [f"stopped Kafka (pid {kafka_pid}), PostgreSQL (pid {postgres_pid})"]
    assert not is_alive(kafka_pid)
    assert not is_alive(postgres_pid)
    assert _pids(scratch) == (None, None)
    assert not scratch.paths.pid_file("kafka").exists()
    assert port_is_free(scratch.kafka.port)
    assert port_is_free(scratch.postgres_port)

    restarted: list[str] = []
    await platform.up(scratch, restarted.append, {}, infra_only=True)
    with _booking_connection(scratch) as connection:
        rows = connection.execute("select id from kept").fetchall()
    assert rows == [(42,)]
    assert await _read_all(scratch) == [b"kept"]
    assert f"Topics: all {len(ALL_TOPICS)} already there" in restarted
    assert not any("once" in line for line in restarted)  # no new initdb, format or download


def test_down_with_nothing_running_says_so(scratch: PlatformConfig) -> None:
    lines: list[str] = []

    platform.down(scratch, lines.append)

    assert lines == ["nothing of ours was running"]


def test_a_services_owner_may_create_databases_its_runtime_role_may_not(
    scratch: PlatformConfig,
) -> None:
    postgres.ensure_postgres(scratch, silent)
    admin_url = (
        f"postgresql://postgres@/postgres?host={scratch.paths.postgres_socket_dir}"
        f"&port={scratch.postgres_port}"
    )
    extra = Service("extra", 1)
    passwords = {"extra": RolePasswords(owner="owner-secret", runtime="runtime-secret")}

    assert postgres.create_service_roles(admin_url, passwords, [extra]) == ["extra"]
    assert postgres.create_service_roles(admin_url, passwords, [extra]) == []

    at = f"127.0.0.1:{scratch.postgres_port}/extra"
    with psycopg.connect(f"postgresql://extra:owner-secret@{at}", autocommit=True) as connection:
        connection.execute("create database extra_scratch")
        connection.execute("drop database extra_scratch")
    with (
        psycopg.connect(f"postgresql://extra_runtime:runtime-secret@{at}") as connection,
        pytest.raises(psycopg.errors.InsufficientPrivilege),
    ):
        connection.execute("create table nope (id int)")
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(f"postgresql://extra_runtime:extra_runtime@{at}")
