"""The Kafka producer every service publishes with, configured for no loss and no reorder."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from aiokafka import AIOKafkaProducer

Headers = Sequence[tuple[str, bytes]]


class Producer:
    """An idempotent producer: every write acknowledged by all in-sync replicas, retried
    without duplicates and without reordering within a partition (aiokafka defaults to
    acks=1 without idempotence, so both are set here on purpose).

    The aiokafka client is made in `start`, because it must be made inside a running event
    loop; the object itself can be built and handed around before that."""

    def __init__(self, bootstrap_servers: str, *, client_id: str) -> None:
        self.bootstrap_servers = bootstrap_servers
        self.client_id = client_id
        self._client: AIOKafkaProducer | None = None

    async def start(self) -> None:
        client = AIOKafkaProducer(
            bootstrap_servers=self.bootstrap_servers,
            client_id=self.client_id,
            acks="all",
            enable_idempotence=True,
            # No linger: the relay hands over a whole batch of rows before it awaits any, so
            # records share requests anyway, and a lone event is not held back. No
            # compression either: small JSON records on a broker next door gain nothing
            # worth the CPU (docs/benchmarks.md).
            linger_ms=0,
        )
        try:
            await client.start()
        except BaseException:
            await client.stop()
            raise
        self._client = client

    async def stop(self) -> None:
        if self._client is not None:
            await self._client.stop()
            self._client = None

    @property
    def client(self) -> AIOKafkaProducer:
        if self._client is None:
            raise RuntimeError("the Kafka producer is not started")
        return self._client

    async def send(
        self,
        topic: str,
        *,
        value: bytes | None,
        key: bytes | None,
        headers: Headers,
        partition: int | None = None,
    ) -> asyncio.Future[Any]:
        """Queue a record; the returned future resolves once the broker has it."""
        future: asyncio.Future[Any] = await self.client.send(
            topic, value=value, key=key, headers=list(headers), partition=partition
        )
        return future

    async def send_and_wait(
        self,
        topic: str,
        *,
        value: bytes | None,
        key: bytes | None,
        headers: Headers,
        partition: int | None = None,
    ) -> None:
        await (await self.send(topic, value=value, key=key, headers=headers, partition=partition))
