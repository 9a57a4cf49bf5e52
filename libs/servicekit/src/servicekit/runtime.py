"""One service process: its database, its Kafka clients, its consumer and outbox relay, and
the FastAPI app that serves its API, all on one event loop.

A service builds a `ServiceRuntime` from its settings, registers its handlers on
`runtime.consumer`, subscribes it to its input topics, and asks for the app. The runtime
starts Kafka clients in the app's lifespan and keeps trying in the background while Kafka is
away, so the process stays live and reports itself not ready until it connects.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from aiokafka.structs import ConsumerRecord
from fastapi import APIRouter, FastAPI
from fastapi.exceptions import RequestValidationError
from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from faststream.message import StreamMessage

from contracts.topics import Topic
from servicekit.consumer import IdempotentConsumer, Outcome
from servicekit.db import Database
from servicekit.dead_letters import ConsumedRecord, DeadLetters
from servicekit.health import health_router
from servicekit.http import refuse_invalid_request
from servicekit.kafka import Producer
from servicekit.outbox import Outbox, OutboxRelay
from servicekit.settings import ServiceSettings

log = logging.getLogger(__name__)


class KafkaNotConnected(RuntimeError):
    pass


class ServiceRuntime:
    def __init__(self, settings: ServiceSettings, *, graceful_timeout: float = 10.0) -> None:
        self.settings = settings
        self.database = Database(settings.database_url, pool_size=settings.database_pool_size)
        self.producer = Producer(settings.kafka_bootstrap_servers, client_id=settings.service_name)
        self.broker = KafkaBroker(
            settings.kafka_bootstrap_servers,
            client_id=settings.service_name,
            # Handlers still running this long after shutdown starts are cancelled, and a
            # cancelled record is not committed (checked by the tests of this release).
            graceful_timeout=graceful_timeout,
            log_level=logging.DEBUG,
        )
        self.outbox = Outbox(source=settings.event_source, topic_prefix=settings.kafka_topic_prefix)
        self.relay = OutboxRelay(self.database, self.producer)
        self.consumer = IdempotentConsumer(
            name=settings.consumer_group,
            database=self.database,
            dead_letters=DeadLetters(self.producer, consumer=settings.consumer_group),
        )
        self._kafka_connected = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    def subscribe(self, *topics: Topic) -> None:
        """Feed every record of `topics` to the consumer, in one consumer group per service."""
        subscriber = self.broker.subscriber(
            *(self.settings.kafka_topic_prefix + topic.name for topic in topics),
            group_id=self.settings.consumer_group,
            ack_policy=AckPolicy.MANUAL,
            auto_offset_reset="earliest",
            decoder=_undecoded,
        )
        consumer = self.consumer

        @subscriber
        async def on_record(body: bytes, message: KafkaMessage) -> None:
            record = consumed_record(message.raw_message)
            outcome = await consumer.process(record)
            if outcome is Outcome.RETRY:
                await asyncio.sleep(consumer.backoff_for(record))
                await message.nack()
            else:
                await message.ack()

    def create_app(self, *, title: str, routers: Sequence[APIRouter] = ()) -> FastAPI:
        app = FastAPI(title=title, lifespan=self._lifespan)
        app.state.runtime = self
        app.add_exception_handler(RequestValidationError, refuse_invalid_request)
        app.include_router(
            health_router({"database": self.database.ping, "kafka": self._ping_kafka})
        )
        for router in routers:
            app.include_router(router)
        return app

    @asynccontextmanager
    async def _lifespan(self, app: FastAPI) -> AsyncIterator[None]:
        self._tasks.append(asyncio.create_task(self.start(), name="kafka-connect"))
        try:
            yield
        finally:
            await self.stop()

    async def start(self) -> None:
        """Connect to Kafka (waiting for it as long as it takes), then start consuming and
        relaying the outbox."""
        backoff = 0.5
        while True:
            try:
                await self.producer.start()
                break
            except Exception as error:
                log.warning("Kafka is not reachable yet (%s); retrying in %.1fs", error, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10.0)
        await self.broker.start()
        self._kafka_connected.set()
        self._tasks.append(asyncio.create_task(self.relay.run(), name="outbox-relay"))
        log.info("%s connected to Kafka", self.settings.service_name)

    async def _ping_kafka(self) -> None:
        if not self._kafka_connected.is_set():
            raise KafkaNotConnected("not connected yet")
        if not await self.broker.ping(timeout=2.0):
            raise KafkaNotConnected("no answer from the cluster")

    async def stop(self) -> None:
        # Consumers first, so nothing new starts; then the relay, then the clients.
        with contextlib.suppress(Exception):
            await self.broker.stop()
        for task in reversed(self._tasks):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        with contextlib.suppress(Exception):
            await self.producer.stop()
        await self.database.dispose()


def consumed_record(raw: Any) -> ConsumedRecord:
    record: ConsumerRecord[bytes, bytes] = raw
    return ConsumedRecord(
        topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        key=record.key,
        value=record.value,
        headers=list(record.headers or ()),
    )


async def _undecoded(message: StreamMessage[Any]) -> bytes:
    """Leave the body as bytes: the consumer parses it, and dead-letters what is not JSON."""
    return message.body
