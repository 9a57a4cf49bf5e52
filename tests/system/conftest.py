"""System tests: the four services as real processes on real Kafka and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from contracts.topics import ALL_TOPICS

from .platform import IsolatedPlatform, start_platform


@pytest.fixture
async def platform(
    kafka_bootstrap: str,
    topic_prefix: str,
    service_database: Callable[[str], str],
    tmp_path: Path,
) -> AsyncIterator[IsolatedPlatform]:
    started = await start_platform(
        kafka_bootstrap=kafka_bootstrap,
        topic_prefix=topic_prefix,
        database_for=service_database,
        log_directory=tmp_path,
    )
    yield started
    await started.close()
    await _delete_topics(kafka_bootstrap, topic_prefix)


async def _delete_topics(bootstrap: str, prefix: str) -> None:
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.delete_topics([prefix + topic.name for topic in ALL_TOPICS])
    finally:
        await admin.close()
