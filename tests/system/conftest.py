"""System tests: the four services as real processes on real Kafka and PostgreSQL."""

from __future__ import annotations

import functools
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from ops.identity import LocalIdentity
from testkit.servers import ScratchDatabases, Servers

from .platform import IsolatedPlatform, running_platform

#: Starts a copy of the platform for one test (`running_platform` with the test's topic
#: prefix, databases and log directory); options: `services`, `kind`.
Launch = Callable[..., AbstractAsyncContextManager[IsolatedPlatform]]


@pytest.fixture
def launch(
    kafka_bootstrap: str,
    topic_prefix: str,
    service_database: Callable[[str], str],
    tmp_path: Path,
    identity: LocalIdentity,
    servers: Servers,
) -> Launch:
    return functools.partial(
        running_platform,
        kafka_bootstrap=kafka_bootstrap,
        topic_prefix=topic_prefix,
        database_for=service_database,
        log_directory=tmp_path,
        tokens=identity.token,
        owner_of=servers.owner_of,
        principal_environment=servers.principal_environment,
    )


@pytest.fixture
async def platform(launch: Launch) -> AsyncIterator[IsolatedPlatform]:
    async with launch() as started:
        yield started


@pytest.fixture(scope="module")
def module_launch(
    servers: Servers, tmp_path_factory: pytest.TempPathFactory, identity: LocalIdentity
) -> Launch:
    """Starts a copy of the platform for all the tests of a module, each of which leaves it
    fit for the next (its own topic prefix and databases, dropped at the end); options:
    `services`, `kind`."""

    @asynccontextmanager
    async def launch(**options: Any) -> AsyncIterator[IsolatedPlatform]:
        scratch = ScratchDatabases(servers)
        try:
            async with running_platform(
                kafka_bootstrap=servers.kafka_bootstrap,
                topic_prefix=f"t{uuid.uuid4().hex[:10]}.",
                database_for=scratch.migrated,
                log_directory=tmp_path_factory.mktemp("platform"),
                tokens=identity.token,
                owner_of=servers.owner_of,
                principal_environment=servers.principal_environment,
                **options,
            ) as platform:
                yield platform
        finally:
            scratch.drop_all()

    return launch


@pytest.fixture(scope="module")
async def module_platform(module_launch: Launch) -> AsyncIterator[IsolatedPlatform]:
    """One copy of the whole platform for all the tests of a module."""
    async with module_launch() as platform:
        yield platform
