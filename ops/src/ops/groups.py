"""Consumer groups: where each has got to, and moving it back (to the beginning, or to a
time) for a replay."""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime

from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError
from aiokafka.structs import TopicPartition

from ops.local.errors import PlatformError
from servicekit.kafka import client_options

#: How long a broker that does not answer is given before the operator is told.
KAFKA_TIMEOUT = 15.0


def kafka_unreachable(bootstrap: str, error: BaseException) -> PlatformError:
    reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return PlatformError(
        f"Kafka at {bootstrap} does not answer ({reason}): start it with `make up`, or set "
        "KAFKA_BOOTSTRAP_SERVERS to a broker that runs"
    )


@asynccontextmanager
async def kafka_admin(bootstrap: str) -> AsyncIterator[AIOKafkaAdminClient]:
    """An admin client; a broker that cannot be reached is a `PlatformError` saying so."""
    admin = AIOKafkaAdminClient(
        **client_options(), bootstrap_servers=bootstrap, request_timeout_ms=10_000
    )
    try:
        async with asyncio.timeout(KAFKA_TIMEOUT):
            await admin.start()
    except (KafkaError, OSError, TimeoutError) as error:
        with contextlib.suppress(Exception):
            await admin.close()
        raise kafka_unreachable(bootstrap, error) from None
    try:
        yield admin
    finally:
        await admin.close()


@asynccontextmanager
async def kafka_consumer(
    bootstrap: str, group: str | None = None
) -> AsyncIterator[AIOKafkaConsumer]:
    """A consumer that never subscribes (offsets are looked up, partitions assigned by hand)
    and never commits on its own."""
    consumer = AIOKafkaConsumer(
        **client_options(),
        bootstrap_servers=bootstrap,
        group_id=group,
        enable_auto_commit=False,
        request_timeout_ms=10_000,
    )
    try:
        async with asyncio.timeout(KAFKA_TIMEOUT):
            await consumer.start()
    except (KafkaError, OSError, TimeoutError) as error:
        with contextlib.suppress(Exception):
            await consumer.stop()
        raise kafka_unreachable(bootstrap, error) from None
    try:
        yield consumer
    finally:
        await consumer.stop()


async def topic_partitions(bootstrap: str, topics: Sequence[str]) -> list[TopicPartition]:
    """Every partition of `topics`; a topic that does not exist has none."""
    async with kafka_admin(bootstrap) as admin:
        return await partitions_of(admin, topics)


async def partitions_of(admin: AIOKafkaAdminClient, topics: Sequence[str]) -> list[TopicPartition]:
    described = await admin.describe_topics(list(topics))
    return [
        TopicPartition(topic["topic"], partition["partition"])
        for topic in sorted(described, key=lambda t: list(topics).index(t["topic"]))
        if topic["error_code"] == 0
        for partition in sorted(topic["partitions"], key=lambda p: p["partition"])
    ]


async def missing_topics(admin: AIOKafkaAdminClient, topics: Sequence[str]) -> list[str]:
    described = await admin.describe_topics(list(topics))
    present = {topic["topic"] for topic in described if topic["error_code"] == 0}
    return [topic for topic in topics if topic not in present]


async def rewind_to_earliest(bootstrap: str, group: str, topics: Sequence[str]) -> int:
    """Commit the earliest offset of every partition of `topics` for `group`; returns how
    many partitions were rewound. The group must have no live members (stop its service
    first): Kafka refuses commits from outside a group that is consuming."""
    return len(await rewind(bootstrap, group, topics))


async def rewind(
    bootstrap: str, group: str, topics: Sequence[str], *, since: datetime | None = None
) -> dict[TopicPartition, int]:
    """Like `rewind_to_earliest`, or, `since` a time, to the first record of each partition
    at or after it (its end offset when it has none); returns the offset each partition now
    starts from. Only the partitions of `topics` move: the group's other offsets stay."""
    partitions = await topic_partitions(bootstrap, topics)
    if not partitions:
        return {}
    async with kafka_consumer(bootstrap, group) as consumer:
        consumer.assign(partitions)
        earliest: dict[TopicPartition, int] = dict(await consumer.beginning_offsets(partitions))
        start = earliest if since is None else await _offsets_at(consumer, earliest, since)
        try:
            await consumer.commit(dict(start))
        except KafkaError as error:
            raise PlatformError(
                f"Kafka refused to rewind consumer group {group} ({type(error).__name__}): "
                "a consumer joined it meanwhile; stop every copy of the service and try again"
            ) from None
    return start


async def _offsets_at(
    consumer: AIOKafkaConsumer, earliest: Mapping[TopicPartition, int], since: datetime
) -> dict[TopicPartition, int]:
    """Per partition, the first offset of a record stamped at or after `since`, or its end;
    never past where the group has got to: what it has not consumed yet is never skipped."""
    partitions = list(earliest)
    moment = math.floor(since.timestamp() * 1000)
    found = await consumer.offsets_for_times(dict.fromkeys(partitions, moment))
    ends = await consumer.end_offsets(partitions)
    start: dict[TopicPartition, int] = {}
    for partition in partitions:
        at = found.get(partition)
        committed = await consumer.committed(partition)
        # A partition the group never committed on would be read from its beginning.
        reached = earliest[partition] if committed is None else committed
        start[partition] = min(ends[partition] if at is None else at.offset, reached)
    return start


async def live_members(admin: AIOKafkaAdminClient, group: str) -> int:
    """How many consumers are in `group` right now (0 for a group that does not exist).

    One group per request: this aiokafka fails to decode a reply describing several."""
    response = await admin.describe_consumer_groups([group])
    # Each described group is a tuple (error_code, group, state, protocol_type, protocol,
    # members).
    return sum(len(described[5]) for reply in response for described in reply.groups)


async def wait_until_empty(bootstrap: str, group: str, *, within: float = 60.0) -> None:
    """Wait until the last consumer has left `group`: one stopped with SIGTERM leaves at
    once; one killed outright only when the broker's session timeout expires."""
    async with kafka_admin(bootstrap) as admin:
        deadline = asyncio.get_running_loop().time() + within
        while (members := await live_members(admin, group)) > 0:
            if asyncio.get_running_loop().time() > deadline:
                raise PlatformError(
                    f"consumer group {group} still has {members} live member(s) {within:g} s "
                    "after its service stopped: another copy of the service runs somewhere; "
                    "stop it and try again"
                )
            await asyncio.sleep(0.5)


@dataclass(frozen=True, slots=True)
class PartitionLag:
    """Where one group stands on one partition. `committed` None: never committed there
    (the group would start from the earliest offset)."""

    group: str
    partition: TopicPartition
    committed: int | None
    earliest: int
    end: int

    @property
    def lag(self) -> int:
        position = self.earliest if self.committed is None else max(self.committed, self.earliest)
        return max(0, self.end - position)


async def committed_offsets(admin: AIOKafkaAdminClient, group: str) -> dict[TopicPartition, int]:
    """The offsets `group` has committed (partitions it never committed are absent)."""
    offsets = await admin.list_consumer_group_offsets(group)
    return {tp: meta.offset for tp, meta in offsets.items() if meta.offset >= 0}


async def end_offsets(
    consumer: AIOKafkaConsumer, partitions: Sequence[TopicPartition]
) -> dict[TopicPartition, int]:
    if not partitions:
        return {}
    return dict(await consumer.end_offsets(list(partitions)))


async def group_lag(
    bootstrap: str, groups: Mapping[str, Sequence[str]]
) -> dict[str, list[PartitionLag]]:
    """For each group (name → the topics it consumes): committed, earliest and end offset of
    every partition of its topics."""
    async with kafka_admin(bootstrap) as admin, kafka_consumer(bootstrap) as consumer:
        lags: dict[str, list[PartitionLag]] = {}
        for group, topics in groups.items():
            partitions = await partitions_of(admin, topics)
            committed = await committed_offsets(admin, group)
            ends = await end_offsets(consumer, partitions)
            earliest = dict(await consumer.beginning_offsets(partitions)) if partitions else {}
            lags[group] = [
                PartitionLag(group, tp, committed.get(tp), earliest[tp], ends[tp])
                for tp in partitions
            ]
        return lags
