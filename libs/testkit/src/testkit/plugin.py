"""The fixtures every test may use (a pytest plugin, named by the root conftest): real Kafka
and PostgreSQL (`testkit.servers`), scratch databases and topics on them, the suite's own
identity provider, one service in-process, and a headless Chromium (`testkit.browser`)."""

from __future__ import annotations

import importlib
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import ExitStack
from datetime import datetime

import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient

from contracts.events import EventPayload
from contracts.identity import AUTH_AUDIENCE_ENV, AUTH_ISSUER_ENV, AUTH_JWKS_FILE_ENV, Role
from ops.identity import LocalIdentity
from servicekit.consumer import Outcome
from servicekit.db import Database
from servicekit.runtime import ServiceRuntime
from testkit.helpers import (
    Deliver,
    RecordingDeadLetters,
    consumed,
    topic_with_dead_letters,
)
from testkit.servers import ScratchDatabases, Servers, start_servers

#: More fixtures, in modules of their own: a real browser (`browser`).
pytest_plugins = ["testkit.browser"]

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
        yield start_servers(stack)


@pytest.fixture(scope="session")
def kafka_bootstrap(servers: Servers) -> str:
    return servers.kafka_bootstrap


@pytest.fixture
def scratch(servers: Servers) -> Iterator[ScratchDatabases]:
    """The scratch databases of one test, dropped afterwards."""
    databases = ScratchDatabases(servers)
    yield databases
    databases.drop_all()


@pytest.fixture
def scratch_databases(scratch: ScratchDatabases) -> Callable[[str], str]:
    """Creates empty databases of their own for one test, owned by a service's owner role
    (which may create databases); returns their SQLAlchemy URLs, as that owner."""
    return scratch.empty


@pytest.fixture
def scratch_database_url(scratch: ScratchDatabases) -> str:
    """An empty database of its own for one test."""
    return scratch.empty("credits")


@pytest.fixture
async def scratch_topic(kafka_bootstrap: str) -> AsyncIterator[str]:
    """A topic of its own for one test, with its `.dlq` twin."""
    async with topic_with_dead_letters(kafka_bootstrap, partitions=3) as name:
        yield name


@pytest.fixture
def service_database(scratch: ScratchDatabases) -> Callable[[str], str]:
    """Creates a scratch database for a service and runs its migrations up to head, as its
    owner; returns its URL as the service connects to it: with its runtime role."""
    return scratch.migrated


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
