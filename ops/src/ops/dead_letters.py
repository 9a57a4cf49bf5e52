"""Dead letters: list what is on a `.dlq` topic, and send letters back to where they came from.

A consumer dead-letters a record it can never process (servicekit/dead_letters.py): the
original key, bytes and headers go to `<topic>.dlq`, on the same partition, plus headers
saying why (`dlq-reason`), where from (`dlq-topic`, `dlq-partition`, `dlq-offset`) and which
consumer gave up (`dlq-consumer`, its consumer group).

Redriving publishes a letter again to its origin topic, with its original key, bytes and
headers: every consumer of that topic sees it again, which is safe, since each remembers the
event ids it applied. Those that applied it skip it; the one that dead-lettered it (a
dead letter is not remembered as processed) applies it now that its cause is fixed, or
dead-letters it again if not.

What was redriven is remembered in the consumer group `ops-redrive.<topic>.dlq` (behind the
topic prefix): per partition, its committed offset is the first letter not yet dealt with,
and the commit's metadata lists the letters beyond it that were (a redrive filtered by
consumer or event id leaves the others for later). A second redrive does not resend them.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError
from aiokafka.structs import TopicPartition

from contracts.dead_letters import (
    CONSUMER,
    DLQ_HEADERS,
    OFFSET,
    PARTITION,
    REASON,
    REASON_KIND,
    TOPIC,
)
from contracts.topics import DEAD_LETTER_SUFFIX
from ops import groups
from ops.local.errors import PlatformError
from servicekit.kafka import client_options

#: Kafka keeps at most 4096 bytes of metadata per committed offset (offset.metadata.max.bytes).
MAX_METADATA = 3500
METADATA_PREFIX = "redriven:"


def dead_letter_topic(topic: str, prefix: str = "") -> str:
    """The `.dlq` topic on the broker, given with or without `.dlq` and the prefix."""
    name = topic if topic.endswith(DEAD_LETTER_SUFFIX) else topic + DEAD_LETTER_SUFFIX
    return name if not prefix or name.startswith(prefix) else prefix + name


def redrive_group(dlq_topic: str, prefix: str = "") -> str:
    """The group that remembers what of `dlq_topic` (a name on the broker) was redriven."""
    base = dlq_topic[len(prefix) :] if prefix and dlq_topic.startswith(prefix) else dlq_topic
    return f"{prefix}ops-redrive.{base}"


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One record of a `.dlq` topic, and what its headers and value say."""

    topic: str
    partition: int
    offset: int
    timestamp: datetime | None
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...]

    def header(self, name: str) -> str | None:
        for header_name, value in reversed(self.headers):
            if header_name == name:
                return value.decode(errors="replace")
        return None

    @property
    def reason(self) -> str:
        return self.header(REASON) or "(no reason given)"

    @property
    def reason_kind(self) -> str | None:
        return self.header(REASON_KIND)

    @property
    def origin_topic(self) -> str | None:
        return self.header(TOPIC)

    @property
    def origin_partition(self) -> int | None:
        return _int_or_none(self.header(PARTITION))

    @property
    def origin_offset(self) -> int | None:
        return _int_or_none(self.header(OFFSET))

    @property
    def origin(self) -> tuple[str, int | None, int | None] | None:
        topic = self.origin_topic
        return None if topic is None else (topic, self.origin_partition, self.origin_offset)

    @property
    def consumer(self) -> str:
        return self.header(CONSUMER) or "?"

    @property
    def event_id(self) -> str | None:
        return _event_attribute(self.value, "id")

    @property
    def event_type(self) -> str | None:
        return _event_attribute(self.value, "type")

    @property
    def original_headers(self) -> list[tuple[str, bytes]]:
        """The headers the record had before it was dead-lettered."""
        return [(name, value) for name, value in self.headers if name not in DLQ_HEADERS]


def _int_or_none(text: str | None) -> int | None:
    return int(text) if text is not None and text.strip().lstrip("-").isdigit() else None


def _event_attribute(value: bytes | None, name: str) -> str | None:
    """An attribute of the CloudEvent in `value`, when it is one (poison often is not)."""
    try:
        document = json.loads(value or b"")
    except (ValueError, UnicodeDecodeError):
        return None
    attribute = document.get(name) if isinstance(document, dict) else None
    return attribute if isinstance(attribute, str) else None


# --- what was redriven ----------------------------------------------------------------------


def encode_offsets(offsets: Iterable[int]) -> str:
    """'3-5,9' for {3, 4, 5, 9}."""
    ranges: list[str] = []
    ordered = sorted(set(offsets))
    index = 0
    while index < len(ordered):
        first = last = ordered[index]
        while index + 1 < len(ordered) and ordered[index + 1] == last + 1:
            index += 1
            last = ordered[index]
        ranges.append(str(first) if first == last else f"{first}-{last}")
        index += 1
    return ",".join(ranges)


def decode_offsets(text: str) -> frozenset[int]:
    offsets: set[int] = set()
    for part in filter(None, text.split(",")):
        first, _, last = part.partition("-")
        offsets.update(range(int(first), int(last or first) + 1))
    return frozenset(offsets)


@dataclass(frozen=True, slots=True)
class RedriveState:
    """What of one `.dlq` partition was dealt with: everything before `watermark`, and the
    offsets in `beyond`."""

    watermark: int = 0
    beyond: frozenset[int] = frozenset()

    def includes(self, offset: int) -> bool:
        return offset < self.watermark or offset in self.beyond

    def with_done(self, offsets: Iterable[int]) -> RedriveState:
        done = set(self.beyond) | set(offsets)
        watermark = self.watermark
        while watermark in done:
            watermark += 1
        return RedriveState(watermark, frozenset(o for o in done if o > watermark))

    @property
    def metadata(self) -> str:
        return METADATA_PREFIX + encode_offsets(self.beyond)

    @classmethod
    def committed(cls, offset: int, metadata: str, earliest: int) -> RedriveState:
        beyond: frozenset[int] = frozenset()
        if metadata.startswith(METADATA_PREFIX):
            try:
                beyond = decode_offsets(metadata[len(METADATA_PREFIX) :])
            except ValueError:
                beyond = frozenset()  # not ours: the offset alone still holds
        return RedriveState(max(offset, earliest), frozenset(o for o in beyond if o >= offset))


async def _states(
    admin: AIOKafkaAdminClient, group: str, earliest: dict[TopicPartition, int]
) -> dict[TopicPartition, RedriveState]:
    committed = await admin.list_consumer_group_offsets(group)
    states = {}
    for tp, first in earliest.items():
        meta = committed.get(tp)
        if meta is None or meta.offset < 0:
            states[tp] = RedriveState(first)
        else:
            states[tp] = RedriveState.committed(meta.offset, meta.metadata or "", first)
    return states


# --- reading -------------------------------------------------------------------------------


async def _read(
    bootstrap: str, topic: str, start: dict[TopicPartition, int]
) -> tuple[list[DeadLetter], dict[TopicPartition, int]]:
    """Every record of `topic` from `start` up to the end offsets as they are now."""
    async with groups.kafka_consumer(bootstrap) as consumer:
        partitions = list(start)
        ends = await groups.end_offsets(consumer, partitions)
        consumer.assign(partitions)
        pending = set()
        for tp in partitions:
            if start[tp] < ends[tp]:
                consumer.seek(tp, start[tp])
                pending.add(tp)
        letters: list[DeadLetter] = []
        while pending:
            batches = await consumer.getmany(*pending, timeout_ms=500)
            for tp, records in batches.items():
                letters += [_letter(r) for r in records if r.offset < ends[tp]]
                if records and records[-1].offset >= ends[tp] - 1:
                    pending.discard(tp)
            for tp in list(pending):
                if await consumer.position(tp) >= ends[tp]:
                    pending.discard(tp)
    letters.sort(key=lambda letter: (letter.partition, letter.offset))
    return letters, ends


def _letter(record: Any) -> DeadLetter:
    timestamp = (
        datetime.fromtimestamp(record.timestamp / 1000, UTC) if record.timestamp >= 0 else None
    )
    return DeadLetter(
        topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        timestamp=timestamp,
        key=record.key,
        value=record.value,
        headers=tuple(record.headers or ()),
    )


async def _partitions_and_earliest(
    admin: AIOKafkaAdminClient, bootstrap: str, topic: str
) -> dict[TopicPartition, int]:
    partitions = await groups.partitions_of(admin, [topic])
    if not partitions:
        raise PlatformError(f"Kafka at {bootstrap} has no topic {topic}")
    async with groups.kafka_consumer(bootstrap) as consumer:
        return dict(await consumer.beginning_offsets(partitions))


@dataclass(frozen=True, slots=True)
class Selection:
    """Which letters to act on: those of one consumer (its group, with or without the topic
    prefix), those carrying given event ids; no criterion means all."""

    consumer: str | None = None
    event_ids: frozenset[str] = frozenset()
    prefix: str = ""

    def matches(self, letter: DeadLetter) -> bool:
        if self.consumer is not None and letter.consumer not in (
            self.consumer,
            self.prefix + self.consumer,
        ):
            return False
        return not self.event_ids or letter.event_id in self.event_ids


@dataclass(frozen=True, slots=True)
class ListedLetter:
    letter: DeadLetter
    redriven: bool


async def list_dead_letters(
    bootstrap: str, topic: str, prefix: str = "", selection: Selection | None = None
) -> list[ListedLetter]:
    """The letters of `topic`'s `.dlq` twin, oldest first per partition, each marked with
    whether it was redriven."""
    selection = selection or Selection(prefix=prefix)
    dlq = dead_letter_topic(topic, prefix)
    async with groups.kafka_admin(bootstrap) as admin:
        earliest = await _partitions_and_earliest(admin, bootstrap, dlq)
        states = await _states(admin, redrive_group(dlq, prefix), earliest)
    letters, _ = await _read(bootstrap, dlq, earliest)
    return [
        ListedLetter(letter, states[TopicPartition(dlq, letter.partition)].includes(letter.offset))
        for letter in letters
        if selection.matches(letter)
    ]


# --- redriving -----------------------------------------------------------------------------


@dataclass
class RedriveReport:
    topic: str
    dry_run: bool
    #: Sent back to their origin topic (or, in a dry run, would have been).
    redriven: list[DeadLetter] = field(default_factory=list)
    #: Another consumer's letter for a record this run sends anyway: sent once.
    same_record: list[DeadLetter] = field(default_factory=list)
    #: Redriven by an earlier run.
    earlier: int = 0
    #: Not selected by the consumer or event id asked for; left for later.
    not_selected: int = 0
    #: Naming no origin topic that exists; left where they are.
    unroutable: list[DeadLetter] = field(default_factory=list)
    #: Naming another origin than the topic this dead-letter topic is the twin of: a
    #: planted letter would otherwise reach any topic (credits' ledger, say). Never sent.
    misrouted: list[DeadLetter] = field(default_factory=list)
    #: Left for the next run: too many scattered letters to remember in one commit.
    deferred: int = 0


async def redrive(
    bootstrap: str,
    topic: str,
    prefix: str = "",
    selection: Selection | None = None,
    *,
    dry_run: bool = False,
) -> RedriveReport:
    """Publish the selected letters of `topic`'s `.dlq` twin that were not redriven before
    back to `topic` (the only origin a letter there can have), and remember them (unless
    `dry_run`)."""
    selection = selection or Selection(prefix=prefix)
    dlq = dead_letter_topic(topic, prefix)
    twin = dlq.removesuffix(DEAD_LETTER_SUFFIX)
    group = redrive_group(dlq, prefix)
    async with groups.kafka_admin(bootstrap) as admin:
        earliest = await _partitions_and_earliest(admin, bootstrap, dlq)
        states = await _states(admin, group, earliest)
        letters, _ = await _read(bootstrap, dlq, {tp: s.watermark for tp, s in states.items()})
        origin_partitions = {
            twin: {tp.partition for tp in await groups.partitions_of(admin, [twin])}
        }
    # Everything before a watermark was dealt with by earlier runs (a .dlq topic is never
    # compacted, so its offsets count its letters).
    report = RedriveReport(
        dlq, dry_run, earlier=sum(s.watermark - earliest[tp] for tp, s in states.items())
    )
    to_send: list[DeadLetter] = []
    done: dict[TopicPartition, set[int]] = {tp: set() for tp in states}
    sent_origins: set[tuple[str, int | None, int | None]] = set()
    full: set[TopicPartition] = set()
    for letter in letters:
        tp = TopicPartition(dlq, letter.partition)
        state = states[tp]
        if state.includes(letter.offset):
            report.earlier += 1
            continue
        if not selection.matches(letter):
            report.not_selected += 1
            continue
        if letter.origin_topic is not None and letter.origin_topic != twin:
            report.misrouted.append(letter)
            continue
        if letter.origin is None or not origin_partitions[twin]:
            report.unroutable.append(letter)
            continue
        if tp in full or len(state.with_done(done[tp] | {letter.offset}).metadata) > MAX_METADATA:
            full.add(tp)
            report.deferred += 1
            continue
        done[tp].add(letter.offset)
        if letter.origin in sent_origins:
            report.same_record.append(letter)
            continue
        sent_origins.add(letter.origin)
        to_send.append(letter)
        report.redriven.append(letter)
    if dry_run:
        return report
    await _publish(bootstrap, to_send, origin_partitions)
    # Remembered only once the broker has every record: a crash in between sends them again
    # next time, which the consumers absorb.
    await _remember(bootstrap, group, states, done)
    return report


async def _publish(
    bootstrap: str, letters: Sequence[DeadLetter], partitions: dict[str, set[int]]
) -> None:
    if not letters:
        return
    producer = AIOKafkaProducer(
        **client_options(), bootstrap_servers=bootstrap, acks="all", enable_idempotence=True
    )
    try:
        await producer.start()
        deliveries = []
        for letter in letters:
            topic = letter.origin_topic
            assert topic is not None  # unroutable letters were set aside
            partition = letter.origin_partition
            deliveries.append(
                await producer.send(
                    topic,
                    value=letter.value,
                    key=letter.key,
                    # Its original partition, where the rest of its key's records are.
                    partition=partition if partition in partitions[topic] else None,
                    headers=letter.original_headers,
                )
            )
        for delivery in deliveries:
            await delivery
    except KafkaError as error:
        raise groups.kafka_unreachable(bootstrap, error) from None
    finally:
        await producer.stop()


async def _remember(
    bootstrap: str,
    group: str,
    states: dict[TopicPartition, RedriveState],
    done: dict[TopicPartition, set[int]],
) -> None:
    offsets = {
        tp: (new.watermark, new.metadata)
        for tp, offsets_done in done.items()
        if offsets_done
        for new in [states[tp].with_done(offsets_done)]
    }
    if not offsets:
        return
    async with groups.kafka_consumer(bootstrap, group) as consumer:
        consumer.assign(list(offsets))
        await consumer.commit(offsets)
