"""The outbox relay against a real broker: committed events are published, in order, once
per row; rolled-back ones never are."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import AsyncIterator

import psycopg
import pytest
from sqlalchemy import func, select

from contracts.topics import COMMERCE_PACKAGES
from servicekit.db import Database, libpq_url
from servicekit.kafka import Producer
from servicekit.outbox import NOTIFY_CHANNEL, Outbox, OutboxRelay
from servicekit.tables import outbox as outbox_table
from testkit.helpers import end_offsets, eventually, read_topic

from .conftest import purchase

pytestmark = pytest.mark.infra


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    yield database
    await database.dispose()


@pytest.fixture
async def relay(database: Database, kafka_bootstrap: str) -> AsyncIterator[OutboxRelay]:
    producer = Producer(kafka_bootstrap, client_id="outbox-test")
    await producer.start()
    relay = OutboxRelay(database, producer, batch_size=7, poll_interval=0.2)
    task = asyncio.create_task(relay.run())
    yield relay
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await producer.stop()


async def test_committed_events_are_published_in_order_and_rolled_back_ones_never(
    database: Database, relay: OutboxRelay, kafka_bootstrap: str
) -> None:
    user_id = random.randint(10**8, 10**9)
    outbox = Outbox(source="/test")
    start = await end_offsets(kafka_bootstrap, COMMERCE_PACKAGES.name)
    sent: list[str] = []
    for n in range(20):
        async with database.transaction() as db:
            event = await outbox.add(db, purchase(user_id=user_id, purchase_id=f"p{n}"))
            sent.append(event.id)
    with pytest.raises(RuntimeError):
        async with database.transaction() as db:
            await outbox.add(db, purchase(user_id=user_id, purchase_id="never"))
            raise RuntimeError("the change failed")

    key = str(user_id).encode()
    records = await read_topic(
        kafka_bootstrap,
        COMMERCE_PACKAGES.name,
        start=start,
        until=lambda records: sum(r.key == key for r in records) >= 20,
    )
    received = [json.loads(r.value) for r in records if r.key == key]
    assert [event["id"] for event in received] == sent
    assert "never" not in {event["data"]["purchaseId"] for event in received}

    async def backlog_is_empty() -> bool:
        async with database.transaction() as db:
            return (await db.scalar(select(func.count()).select_from(outbox_table))) == 0

    await eventually(backlog_is_empty)


async def test_a_transaction_wakes_the_relay_once_at_commit_and_a_rolled_back_one_never(
    database: Database,
) -> None:
    """The relay listens for `NOTIFY_CHANNEL`: a commit that recorded events sends one
    notification, however many times it called `insert`; a rollback sends none."""
    user_id = random.randint(10**8, 10**9)
    outbox = Outbox(source="/test")
    async with await psycopg.AsyncConnection.connect(
        libpq_url(database.url), autocommit=True
    ) as listener:
        await listener.execute(f"LISTEN {NOTIFY_CHANNEL}")
        notifications = listener.notifies(timeout=1.0)
        async with database.transaction() as db:
            for n in range(3):
                await outbox.add(db, purchase(user_id=user_id, purchase_id=f"w{n}"))
        with pytest.raises(RuntimeError):
            async with database.transaction() as db:
                await outbox.add(db, purchase(user_id=user_id, purchase_id="never"))
                raise RuntimeError("the change failed")
        received = [notification.channel async for notification in notifications]
    assert received == [NOTIFY_CHANNEL]
