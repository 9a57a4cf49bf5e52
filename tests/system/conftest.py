"""System tests: the four services as real processes on real Kafka and PostgreSQL."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path

import pytest

from ops.identity import LocalIdentity

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
) -> Launch:
    return functools.partial(
        running_platform,
        kafka_bootstrap=kafka_bootstrap,
        topic_prefix=topic_prefix,
        database_for=service_database,
        log_directory=tmp_path,
        tokens=identity.token,
    )


@pytest.fixture
async def platform(launch: Launch) -> AsyncIterator[IsolatedPlatform]:
    async with launch() as started:
        yield started
