"""An analytics consumer following `analytics.session-usage`: every client's latest usage.

It reads the compacted topic from the beginning, keeps the latest usage of each client (by
`asOf`, so that a history announced again changes nothing it holds) and prints each update.
It needs only aiokafka (docs/subscribing.md says why each setting is what it is).

    eval "$(uv run ops env --as subscriber)"
    uv run python examples/usage_subscriber.py                 # until Ctrl-C
    uv run python examples/usage_subscriber.py --until-idle 5  # stop after 5 s without news

Settings come from the environment, as for every client of the platform:
KAFKA_BOOTSTRAP_SERVERS, KAFKA_SECURITY_PROTOCOL, KAFKA_SASL_MECHANISM, KAFKA_SASL_USERNAME,
KAFKA_SASL_PASSWORD, KAFKA_SSL_CAFILE, and KAFKA_TOPIC_PREFIX (empty unless the platform
runs behind a prefix).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener
from aiokafka.helpers import create_ssl_context

TOPIC = "analytics.session-usage"
#: The subscriber principal may use the consumer groups named `subscriber.<your name>`.
GROUP_PREFIX = "subscriber."


@dataclass(frozen=True, slots=True)
class Usage:
    """One client's usage as a SessionUsageUpdated event carries it."""

    user_id: int
    total: int
    solo: int
    trainer_led: int
    credits_total: int
    credits_used: int
    credits_remaining: int
    #: When the usage last changed: the time of the change, not of the announcement.
    as_of: datetime

    @classmethod
    def from_event(cls, event: Mapping[str, Any]) -> Usage:
        """From the CloudEvent's JSON; unknown attributes and fields are ignored, as the
        contract asks of every consumer."""
        data = event["data"]
        credits = data["credits"]
        return cls(
            user_id=int(data["userId"]),
            total=int(data["total"]),
            solo=int(data["solo"]["count"]),
            trainer_led=int(data["trainerLed"]["count"]),
            credits_total=int(credits["total"]),
            credits_used=int(credits["used"]),
            credits_remaining=int(credits["remaining"]),
            as_of=datetime.fromisoformat(data["asOf"]),
        )

    def describe(self) -> str:
        return (
            f"client {self.user_id}: {self.total} workouts ({self.solo} solo, "
            f"{self.trainer_led} trainer-led), credits {self.credits_used} used of "
            f"{self.credits_total} ({self.credits_remaining} left), as of "
            f"{self.as_of.isoformat()}"
        )


class LatestUsage:
    """The latest usage of every client seen: what a dashboard or a report would store."""

    def __init__(self) -> None:
        self.by_client: dict[int, Usage] = {}

    def take(self, value: bytes | None) -> Usage | None:
        """Keep the usage a record carries unless an older one; the usage kept, or None.

        One client's records are in one partition, in order, so the last read is the latest
        announced. But analytics announces a client's whole history again when it is
        rebuilt from its topics, so a record older (by `asOf`) than the usage held is not
        news. The event's `id` cannot tell either: each announcement gets a new one."""
        if value is None:
            return None  # a tombstone: analytics never sends one, and it says nothing
        event = json.loads(value)
        if event.get("type") != "SessionUsageUpdated":
            return None
        usage = Usage.from_event(event)
        held = self.by_client.get(usage.user_id)
        if held is not None and usage.as_of < held.as_of:
            return None
        self.by_client[usage.user_id] = usage
        return usage


def consumer_settings(environment: Mapping[str, str], name: str) -> dict[str, Any]:
    """The contract's client settings from `environment`, as the `subscriber` principal,
    in the consumer group `subscriber.<name>`."""
    protocol = environment.get("KAFKA_SECURITY_PROTOCOL", "PLAINTEXT")
    settings: dict[str, Any] = {
        "bootstrap_servers": environment.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092"),
        "security_protocol": protocol,
        "group_id": environment.get("KAFKA_TOPIC_PREFIX", "") + GROUP_PREFIX + name,
        # The latest usage is kept in memory here, so every start reads the topic from the
        # beginning (`_FromTheBeginning`) and commits nothing. A subscriber that stores it
        # durably commits its offsets after storing, and resumes from them.
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
    }
    if protocol.startswith("SASL"):
        settings |= {
            "sasl_mechanism": environment.get("KAFKA_SASL_MECHANISM", "SCRAM-SHA-512"),
            "sasl_plain_username": environment["KAFKA_SASL_USERNAME"],
            "sasl_plain_password": environment["KAFKA_SASL_PASSWORD"],
        }
    if protocol.endswith("SSL"):
        settings["ssl_context"] = create_ssl_context(cafile=environment.get("KAFKA_SSL_CAFILE"))
    return settings


class _FromTheBeginning(ConsumerRebalanceListener):  # type: ignore[misc]
    """Each partition this consumer is given is read from its first record."""

    def __init__(self, consumer: AIOKafkaConsumer) -> None:
        self.consumer = consumer

    async def on_partitions_revoked(self, revoked: Any) -> None:
        pass

    async def on_partitions_assigned(self, assigned: Any) -> None:
        if assigned:
            await self.consumer.seek_to_beginning(*assigned)


async def follow(
    environment: Mapping[str, str],
    *,
    name: str,
    latest: LatestUsage,
    on_update: Callable[[Usage], None],
    until_idle: float | None = None,
) -> None:
    """Follow the topic into `latest`, calling `on_update` with each usage kept, until
    cancelled (or `until_idle` seconds pass without a record, counted while this consumer
    holds partitions: joining the group is not idleness)."""
    consumer = AIOKafkaConsumer(**consumer_settings(environment, name))
    topic = environment.get("KAFKA_TOPIC_PREFIX", "") + TOPIC
    consumer.subscribe([topic], listener=_FromTheBeginning(consumer))
    try:
        await consumer.start()
        idle_since = asyncio.get_running_loop().time()
        while True:
            batches = await consumer.getmany(timeout_ms=200)
            for records in batches.values():
                for record in records:
                    usage = latest.take(record.value)
                    if usage is not None:
                        on_update(usage)
            now = asyncio.get_running_loop().time()
            if batches or not consumer.assignment():
                idle_since = now
            elif until_idle is not None and now - idle_since >= until_idle:
                return
    finally:
        await consumer.stop()


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--name", default="usage-example", help="the consumer group is subscriber.NAME"
    )
    parser.add_argument(
        "--until-idle", type=float, metavar="SECONDS", help="stop after this long without news"
    )
    arguments = parser.parse_args(argv)
    latest = LatestUsage()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(
            follow(
                os.environ,
                name=arguments.name,
                latest=latest,
                on_update=lambda usage: print(usage.describe(), flush=True),
                until_idle=arguments.until_idle,
            )
        )
    print(f"{len(latest.by_client)} clients")


if __name__ == "__main__":
    main(sys.argv[1:])
