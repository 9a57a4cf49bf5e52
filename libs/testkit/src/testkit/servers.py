"""The real Kafka and PostgreSQL the tests run against, and scratch databases on them.

Servers are chosen in this order:
1. named in the environment (`KAFKA_BOOTSTRAP_SERVERS`, `<SERVICE>_DATABASE_URL`);
2. testcontainers, when a Docker engine answers;
3. the local processes of `make up` (`ops up --infra-only`), started when not running.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import uuid
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql

from contracts.principals import OPS, PRINCIPALS
from contracts.services import KAFKA_BOOTSTRAP_ENV, SERVICES, Service, service_named
from ops.databases import database_name, drop_database
from ops.local.config import config_from_env
from ops.local.paths import Paths, repository_root
from ops.local.secrets import (
    KafkaCredentials,
    ensure_kafka_credentials,
    use_local_kafka_principal,
    use_local_passwords,
)
from servicekit.db import libpq_url
from testkit.helpers import migrate

ROOT = repository_root(Path(__file__))

#: The port the broker's HOST listener takes in its container (infra/docker/kafka-start.sh).
CONTAINER_KAFKA_PORT = 9092


@dataclass(frozen=True, slots=True)
class Servers:
    """Where the tests' Kafka and PostgreSQL are: each service's database as its runtime
    role reaches it, and as its owner (who may create databases: the tests make scratch
    ones beside it)."""

    kafka_bootstrap: str
    database_urls: dict[str, str]
    owner_urls: dict[str, str]
    origin: str
    #: The Kafka principals' passwords, where the tests made the broker; elsewhere every
    #: client is whoever the environment says.
    kafka_credentials: KafkaCredentials | None = None

    def principal_environment(self, principal: str) -> dict[str, str]:
        """The client settings a process connecting as `principal` needs."""
        if self.kafka_credentials is None:
            return {}
        return self.kafka_credentials.environment(principal)

    def database_url(self, service: Service) -> str:
        return self.database_urls[service.name]

    def owner_url(self, service: Service) -> str:
        return self.owner_urls[service.name]

    def owner_of(self, service_name: str, url: str) -> str:
        """The owner's URL of the database `url` names (a scratch one beside the service's)."""
        return on_database(self.owner_urls[service_name], database_name(url))


def on_database(url: str, database: str) -> str:
    """`url`, naming another database on the same server, as the same role."""
    return url.rsplit("/", 1)[0] + "/" + database


def start_servers(stack: ExitStack) -> Servers:
    """The servers the tests use (see above); containers are stopped when `stack` closes."""
    if not _named_in_environment() and _docker_answers():
        return _container_servers(stack)
    return _local_servers()


def _named_in_environment() -> bool:
    return KAFKA_BOOTSTRAP_ENV in os.environ or any(
        s.database_url_env in os.environ for s in SERVICES
    )


def _docker_answers() -> bool:
    try:
        import docker

        docker.from_env(timeout=3).ping()
    except Exception:
        return False
    return True


def _local_servers() -> Servers:
    """Start (or reuse) the local Kafka and PostgreSQL of `make up`, honouring the env."""
    ops_command = Path(sys.executable).with_name("ops")
    subprocess.run([str(ops_command), "up", "--infra-only"], check=True, cwd=ROOT)
    paths = Paths(ROOT)
    # The local roles' passwords, for the tests and the services they start.
    use_local_passwords(paths)
    config = config_from_env(os.environ, paths)
    credentials = None
    if config.kafka.is_local_address:
        # Our own broker: the tests are its `ops` principal, each service its own.
        use_local_kafka_principal(paths)
        credentials = ensure_kafka_credentials(paths)
    return Servers(
        kafka_bootstrap=config.kafka.bootstrap,
        database_urls={db.service.name: db.url for db in config.databases},
        owner_urls={db.service.name: db.owner_url for db in config.databases},
        origin="environment" if _named_in_environment() else "local processes",
        kafka_credentials=credentials,
    )


def _container_servers(stack: ExitStack) -> Servers:
    """The broker as docker-compose.yml runs it (the same image and start script: SCRAM for
    every principal, ACLs deny by default), and PostgreSQL with the services' roles."""
    from testcontainers.community.postgres import PostgresContainer
    from testcontainers.core.container import DockerContainer
    from testcontainers.core.wait_strategies import LogMessageWaitStrategy

    from ops.kafka_access import grant, platform_acls
    from ops.local.kafka import KAFKA_IMAGE, new_cluster_id
    from ops.local.postgres import create_service_roles
    from ops.local.secrets import CONTROLLER_USER, RolePasswords, new_password
    from ops.local.topics import create_topics

    credentials = KafkaCredentials(
        {name: new_password() for name in [*(p.name for p in PRINCIPALS), CONTROLLER_USER]}
    )
    # Clients on this machine connect to the address the broker advertises, so the port is
    # chosen first and published as itself (the Docker engine must run on this machine).
    port = _free_port()
    stack.enter_context(
        DockerContainer(KAFKA_IMAGE)
        .with_volume_mapping(ROOT / "infra" / "docker" / "kafka-start.sh", "/kafka-start.sh")
        .with_kwargs(entrypoint=["/bin/bash", "/kafka-start.sh"])
        .with_bind_ports(CONTAINER_KAFKA_PORT, port)
        .with_envs(
            CLUSTER_ID=new_cluster_id(),
            KAFKA_LOG_DIRS="/var/lib/kafka/data",
            KAFKA_CONTROLLER_QUORUM_VOTERS="1@localhost:9093",
            KAFKA_ADVERTISED_LISTENERS=f"INTERNAL://localhost:29092,HOST://127.0.0.1:{port}",
            **{f"KAFKA_{name.upper()}_PASSWORD": p for name, p in credentials.passwords.items()},
        )
        .waiting_for(LogMessageWaitStrategy("Kafka Server started"))
    )
    bootstrap = f"127.0.0.1:{port}"
    for name, value in credentials.environment(OPS.name).items():
        os.environ.setdefault(name, value)
    asyncio.run(create_topics(bootstrap))
    asyncio.run(grant(bootstrap, platform_acls()))
    postgres = stack.enter_context(PostgresContainer("postgres:17", driver=None))
    passwords = {s.name: RolePasswords(new_password(), new_password()) for s in SERVICES}
    create_service_roles(postgres.get_connection_url(), passwords)
    at = f"{postgres.get_container_host_ip()}:{int(postgres.get_exposed_port(5432))}"

    def url(role: str, password: str, service: Service) -> str:
        return f"postgresql+psycopg://{role}:{password}@{at}/{service.database}"

    return Servers(
        kafka_bootstrap=bootstrap,
        database_urls={s.name: url(s.runtime_role, passwords[s.name].runtime, s) for s in SERVICES},
        owner_urls={s.name: url(s.owner_role, passwords[s.name].owner, s) for s in SERVICES},
        origin="testcontainers",
        kafka_credentials=credentials,
    )


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class ScratchDatabases:
    """Databases of their own for a test (or a module's tests), beside each service's own on
    the tests' servers: created by the service's owner role (which may create databases),
    dropped by `drop_all`."""

    def __init__(self, servers: Servers) -> None:
        self.servers = servers
        self._created: list[tuple[str, str]] = []

    def empty(self, service_name: str) -> str:
        """A new empty database; its SQLAlchemy URL as the service's owner."""
        owner_url = self.servers.owner_url(service_named(service_name))
        name = f"{service_name}_test_{uuid.uuid4().hex[:10]}"
        with _admin_connection(owner_url) as connection:
            connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        self._created.append((owner_url, name))
        return on_database(owner_url, name)

    def migrated(self, service_name: str) -> str:
        """A new database with the service's migrations run up to head, as its owner; its
        URL as the service connects to it: with its runtime role."""
        owner_url = self.empty(service_name)
        migrate(ROOT / "services" / service_name, owner_url)
        runtime_url = self.servers.database_url(service_named(service_name))
        return on_database(runtime_url, database_name(owner_url))

    def drop_all(self) -> None:
        for owner_url, name in self._created:
            with _admin_connection(owner_url) as connection:
                drop_database(connection, name, attempts=3)
        self._created.clear()


def _admin_connection(url: str) -> psycopg.Connection[tuple[object, ...]]:
    return psycopg.connect(libpq_url(url), autocommit=True)
