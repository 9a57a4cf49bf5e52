"""The real Kafka and PostgreSQL the test suite runs against, as `ops up --infra-only` leaves
them: every topic of the contract with its settings, every service database with its role.

Starts the infrastructure when it is not running (the same code as `ops up --infra-only`)
and leaves it running for the rest of the suite; `ops down` stops it.
"""

from __future__ import annotations

import os
import time

import psycopg
import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from contracts.services import SERVICES, Service
from contracts.topics import ALL_TOPICS
from ops.local import kafka, platform, postgres
from ops.local.config import PlatformConfig, config_from_env
from ops.local.paths import Paths, repository_root
from ops.local.processes import running_pid
from ops.local.report import silent
from ops.local.secrets import use_local_kafka_principal
from servicekit.kafka import client_options
from servicekit.urls import libpq_url

pytestmark = pytest.mark.infra


@pytest.fixture(scope="session")
async def infra() -> PlatformConfig:
    paths = Paths(repository_root())
    use_local_kafka_principal(paths)  # the broker authenticates its clients: as `ops`
    config = config_from_env(os.environ, paths)
    await platform.up(config, silent, os.environ, infra_only=True)
    return config


async def test_every_topic_of_the_contract_exists_with_its_partitions(
    infra: PlatformConfig,
) -> None:
    admin = AIOKafkaAdminClient(**client_options(), bootstrap_servers=infra.kafka.bootstrap)
    await admin.start()
    try:
        described = await admin.describe_topics([topic.name for topic in ALL_TOPICS])
    finally:
        await admin.close()

    by_name = {entry["topic"]: entry for entry in described}
    for topic in ALL_TOPICS:
        assert by_name[topic.name]["error_code"] == 0, topic.name
        assert len(by_name[topic.name]["partitions"]) == topic.partitions, topic.name


async def test_every_topic_of_the_contract_has_its_settings(infra: PlatformConfig) -> None:
    admin = AIOKafkaAdminClient(**client_options(), bootstrap_servers=infra.kafka.bootstrap)
    await admin.start()
    try:
        responses = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, topic.name) for topic in ALL_TOPICS]
        )
    finally:
        await admin.close()

    settings = {
        resource[3]: {entry[0]: entry[1] for entry in resource[4]}
        for response in responses
        for resource in response.resources
    }
    for topic in ALL_TOPICS:
        assert topic.config, topic.name
        for key, value in topic.config.items():
            assert settings[topic.name][key] == value, (topic.name, key)


def _who(url: str, passfile: str) -> tuple[object, ...] | None:
    with psycopg.connect(libpq_url(url), connect_timeout=5, passfile=passfile) as connection:
        return connection.execute(
            "select current_user, current_database(), pg_get_userbyid(datdba), rolcreatedb"
            " from pg_database join pg_roles on rolname = current_user"
            " where datname = current_database()"
        ).fetchone()


@pytest.mark.parametrize("service", SERVICES, ids=lambda service: service.name)
def test_each_service_database_accepts_both_its_roles_logins(
    infra: PlatformConfig, service: Service
) -> None:
    database = infra.database_for(service)
    passfile = str(infra.paths.pgpass)

    runtime, owner = _who(database.url, passfile), _who(database.owner_url, passfile)

    if database.is_local_address:
        # The owner owns the database and may create more (the tests make scratch ones);
        # the runtime role may not.
        assert owner == (service.owner_role, service.database, service.owner_role, True)
        assert runtime == (service.runtime_role, service.database, service.owner_role, False)
        assert oct(infra.paths.pgpass.stat().st_mode & 0o777) == "0o600"
    else:
        assert runtime is not None
        assert owner is not None


async def test_a_second_up_finds_everything_running_and_changes_nothing(
    infra: PlatformConfig,
) -> None:
    kafka_pid = running_pid(kafka.process_spec(infra.paths))
    postgres_pid = running_pid(postgres.process_spec(infra.paths))
    lines: list[str] = []
    started = time.monotonic()

    await platform.up(infra, lines.append, os.environ, infra_only=True)

    assert time.monotonic() - started < 10
    assert running_pid(kafka.process_spec(infra.paths)) == kafka_pid
    assert running_pid(postgres.process_spec(infra.paths)) == postgres_pid
    if kafka_pid is not None:
        assert f"Kafka: already running (pid {kafka_pid})" in lines
    if postgres_pid is not None:
        assert f"PostgreSQL: already running (pid {postgres_pid})" in lines
    assert f"Topics: all {len(ALL_TOPICS)} already there" in lines
    assert not any("created" in line or "started" in line for line in lines)
