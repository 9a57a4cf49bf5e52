"""Fixtures shared by every test: real Kafka and PostgreSQL, and scratch resources on them.

Servers are chosen in this order:
1. named in the environment (`KAFKA_BOOTSTRAP_SERVERS`, `<SERVICE>_DATABASE_URL`);
2. testcontainers, when a Docker engine answers;
3. the local processes of `make up` (`ops up --infra-only`), started when not running.

The workspace's `contracts` and `ops` packages share their names with the folders that hold
them; importing them here first keeps pytest's importlib mode from standing in empty modules
for them when it names test modules after their paths.
"""

from __future__ import annotations

import asyncio
import importlib
import os
import socket
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import psycopg
import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from psycopg import sql

import contracts
import ops
from contracts.events import EventPayload
from contracts.identity import AUTH_AUDIENCE_ENV, AUTH_ISSUER_ENV, AUTH_JWKS_FILE_ENV, Role
from contracts.principals import OPS, PRINCIPALS
from contracts.services import KAFKA_BOOTSTRAP_ENV, SERVICES, Service, service_named
from ops.databases import database_name, drop_database
from ops.identity import LocalIdentity
from ops.local.config import config_from_env
from ops.local.paths import Paths
from ops.local.secrets import (
    KafkaCredentials,
    ensure_kafka_credentials,
    use_local_kafka_principal,
    use_local_passwords,
)
from servicekit.consumer import Outcome
from servicekit.db import Database, libpq_url
from servicekit.runtime import ServiceRuntime
from testkit.helpers import (
    Deliver,
    RecordingDeadLetters,
    consumed,
    migrate,
    topic_with_dead_letters,
)

__all__ = ["contracts", "ops"]

ROOT = Path(__file__).resolve().parent


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


#: The port the broker's HOST listener takes in its container (infra/docker/kafka-start.sh).
CONTAINER_KAFKA_PORT = 9092


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


#: The tests' own identity provider signs tokens with this issuer.
TEST_ISSUER = "urn:training-platform:tests"
#: Long enough for the whole suite: one token per session serves every in-process call.
SUITE_TOKEN_TTL = 6 * 3600


@pytest.fixture(scope="session", autouse=True)
def identity(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalIdentity]:
    """An identity provider of the suite's own, trusted by every service the tests build or
    start (the settings are read from the environment, which child processes inherit):
    authentication stays on in every test, and the tests hold the key to sign tokens."""
    provider = LocalIdentity(tmp_path_factory.mktemp("identity"), issuer=TEST_ISSUER)
    provider.ensure()
    with pytest.MonkeyPatch.context() as environment:
        environment.setenv(AUTH_ISSUER_ENV, provider.issuer)
        environment.setenv(AUTH_AUDIENCE_ENV, provider.audience)
        environment.setenv(AUTH_JWKS_FILE_ENV, str(provider.jwks_file))
        yield provider


@pytest.fixture(scope="session")
def staff_headers(identity: LocalIdentity) -> dict[str, str]:
    """Headers of a staff member's calls: staff may do everything."""
    token = identity.token(Role.STAFF, "tests", ttl=SUITE_TOKEN_TTL)
    return {"authorization": f"Bearer {token}"}


@pytest.fixture(scope="session")
def servers() -> Iterator[Servers]:
    with ExitStack() as stack:
        if not _named_in_environment() and _docker_answers():
            yield _container_servers(stack)
        else:
            yield _local_servers()


@pytest.fixture(scope="session")
def kafka_bootstrap(servers: Servers) -> str:
    return servers.kafka_bootstrap


def _admin_connection(url: str) -> psycopg.Connection[tuple[object, ...]]:
    return psycopg.connect(libpq_url(url), autocommit=True)


@pytest.fixture
def scratch_databases(servers: Servers) -> Iterator[Callable[[str], str]]:
    """Creates empty databases of their own for one test, owned by a service's owner role
    (which may create databases); returns their SQLAlchemy URLs, as that owner, and drops
    them afterwards."""
    created: list[tuple[str, str]] = []

    def create(service_name: str) -> str:
        owner_url = servers.owner_url(service_named(service_name))
        name = f"{service_name}_test_{uuid.uuid4().hex[:10]}"
        with _admin_connection(owner_url) as connection:
            connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        created.append((owner_url, name))
        return on_database(owner_url, name)

    yield create
    for owner_url, name in created:
        _drop_database(owner_url, name)


def _drop_database(owner_url: str, name: str) -> None:
    with _admin_connection(owner_url) as connection:
        drop_database(connection, name, attempts=3)


@pytest.fixture
def scratch_database_url(scratch_databases: Callable[[str], str]) -> str:
    """An empty database of its own for one test."""
    return scratch_databases("credits")


@pytest.fixture
async def scratch_topic(kafka_bootstrap: str) -> AsyncIterator[str]:
    """A topic of its own for one test, with its `.dlq` twin."""
    async with topic_with_dead_letters(kafka_bootstrap, partitions=3) as name:
        yield name


@pytest.fixture
def service_database(
    servers: Servers, scratch_databases: Callable[[str], str]
) -> Callable[[str], str]:
    """Creates a scratch database for a service and runs its migrations up to head, as its
    owner; returns its URL as the service connects to it: with its runtime role."""

    def create(service_name: str) -> str:
        owner_url = scratch_databases(service_name)
        migrate(ROOT / "services" / service_name, owner_url)
        return on_database(
            servers.database_url(service_named(service_name)), database_name(owner_url)
        )

    return create


@pytest.fixture
def topic_prefix() -> str:
    """A namespace of its own for one test's topics (see `KAFKA_TOPIC_PREFIX`)."""
    return f"t{uuid.uuid4().hex[:10]}."


# --- one service, in-process ------------------------------------------------------------
# A service's tests name it with a `service_name` fixture in their conftest; these fixtures
# then give them the service on scratch databases of its own: its consumer fed events
# directly (delivery through the broker is proven by servicekit's and the system tests) and
# its API called in-process, without the lifespan (no Kafka clients started).


@pytest.fixture
def service_name() -> str:
    raise pytest.UsageError("a service's conftest defines the `service_name` fixture")


@pytest.fixture
async def make_app(
    service_name: str,
    service_database: Callable[[str], str],
    kafka_bootstrap: str,
    topic_prefix: str,
) -> AsyncIterator[Callable[[], FastAPI]]:
    """Builds copies of the service, each on a fresh database (two make a rebuild test)."""
    main = importlib.import_module(f"{service_name}.main")
    settings_type = importlib.import_module(f"{service_name}.settings").Settings
    built: list[FastAPI] = []

    def make() -> FastAPI:
        settings = settings_type(
            database_url=service_database(service_name),
            kafka_bootstrap_servers=kafka_bootstrap,
            kafka_topic_prefix=topic_prefix,
        )
        app: FastAPI = main.create_app(settings)
        built.append(app)
        return app

    yield make
    for app in built:
        await app.state.runtime.database.dispose()


@pytest.fixture
def app(make_app: Callable[[], FastAPI]) -> FastAPI:
    return make_app()


@pytest.fixture
def runtime(app: FastAPI) -> ServiceRuntime:
    runtime: ServiceRuntime = app.state.runtime
    return runtime


@pytest.fixture
async def owner_database(
    runtime: ServiceRuntime, servers: Servers, service_name: str
) -> AsyncIterator[Database]:
    """The service's database as its owner reaches it, for tests that start tables afresh
    between rounds (TRUNCATE is the owner's alone, not the service's)."""
    url = servers.owner_of(service_name, runtime.settings.database_url.get_secret_value())
    database = Database(url)
    yield database
    await database.dispose()


@pytest.fixture
def dead_letters(runtime: ServiceRuntime) -> RecordingDeadLetters:
    recording = RecordingDeadLetters()
    runtime.consumer.dead_letters = recording
    return recording


@pytest.fixture
async def api(
    app: FastAPI, service_name: str, staff_headers: dict[str, str]
) -> AsyncIterator[AsyncClient]:
    """The service's API, called in-process by a staff member (see `staff_headers`)."""
    transport = ASGITransport(app=app)
    async with AsyncClient(
        transport=transport, base_url=f"http://{service_name}", headers=staff_headers
    ) as client:
        yield client


@pytest.fixture
def deliver(runtime: ServiceRuntime, dead_letters: RecordingDeadLetters) -> Deliver:
    """Hands an event to the service's consumer as if it came from its topic."""

    async def deliver(
        payload: EventPayload,
        *,
        event_id: str | None = None,
        source: str | None = None,
        time: datetime | None = None,
    ) -> Outcome:
        record = consumed(
            payload,
            event_id=event_id,
            source=source,
            time=time,
            topic_prefix=runtime.settings.kafka_topic_prefix,
        )
        return await runtime.consumer.process(record)

    return deliver
