"""What the benchmarks send: records as the platform's services publish them, produced in
bulk; trainer-led sessions as the other platform services send them, and waiting for their
deductions; a solo workout as the workouts API takes it."""

from __future__ import annotations

import asyncio
import math
import random
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import output
import psycopg
from aiokafka import AIOKafkaProducer
from aiokafka.structs import TopicPartition
from discovery import Platform

from contracts.envelope import build_event, encode, partition_key, record_headers, topic_of
from contracts.events import EventPayload, PackagePurchased, SessionBooked, WorkoutLogged
from servicekit.kafka import client_options

#: The CloudEvents `source` of every event a benchmark builds.
SOURCE = "/bench"
#: Ids the benchmarks make up start at or above this, far from anything a test or a person
#: creates; each batch draws a random base of its own, so runs never collide.
FIRST_BENCH_ID = 10**12
ID_SPAN = 10**17
TRAINERS = 25


@dataclass(frozen=True, slots=True)
class Record:
    """One record ready to send: an event as a platform service would publish it."""

    topic: str
    key: bytes
    value: bytes
    headers: list[tuple[str, bytes]]


def record_of(payload: EventPayload, prefix: str = "") -> Record:
    """The record of one event: its CloudEvent (structured mode), key and topic."""
    return Record(
        topic=prefix + topic_of(payload).name,
        key=partition_key(payload),
        value=encode(build_event(payload, source=SOURCE)),
        headers=record_headers(),
    )


@asynccontextmanager
async def kafka_producer(bootstrap: str, *, linger_ms: int = 20) -> AsyncIterator[AIOKafkaProducer]:
    """A producer as the services' own: every record acknowledged by all in-sync replicas,
    idempotent; a little linger lets records share requests."""
    producer = AIOKafkaProducer(
        **client_options(),
        bootstrap_servers=bootstrap,
        acks="all",
        enable_idempotence=True,
        linger_ms=linger_ms,
    )
    await producer.start()
    try:
        yield producer
    finally:
        await producer.stop()


async def send(producer: AIOKafkaProducer, records: Iterable[Record]) -> list[asyncio.Future[Any]]:
    """Queue records as fast as the producer takes them; each future resolves to where its
    record went once the broker has it."""
    return [
        await producer.send(r.topic, value=r.value, key=r.key, headers=r.headers) for r in records
    ]


@dataclass(frozen=True)
class Produced:
    """Where records went, in the order they were sent."""

    positions: list[tuple[TopicPartition, int]]

    def __len__(self) -> int:
        return len(self.positions)

    def ranges(self, first: int | None = None) -> dict[TopicPartition, tuple[int, int]]:
        """Per partition, the first offset and the one after the last, of the first `first`
        records sent (of all of them by default)."""
        ranges: dict[TopicPartition, tuple[int, int]] = {}
        for partition, offset in self.positions[:first]:
            low, high = ranges.get(partition, (offset, offset + 1))
            ranges[partition] = (min(low, offset), max(high, offset + 1))
        return ranges


async def delivered(futures: Sequence[asyncio.Future[Any]]) -> Produced:
    metadata = await asyncio.gather(*futures)
    return Produced([(TopicPartition(m.topic, m.partition), m.offset) for m in metadata])


async def produce(bootstrap: str, records: Iterable[Record]) -> Produced:
    """Send every record and wait until the broker has them all."""
    async with kafka_producer(bootstrap) as producer:
        return await delivered(await send(producer, records))


# --- trainer-led sessions, as the other platform services send them ---------------------


@dataclass(frozen=True, slots=True)
class SessionIds:
    """Fresh ids for a batch of trainer-led sessions: random bases at or above 10^12, so
    that no two batches (nor anything else on the platform) share a session or a client."""

    first_session: int
    first_client: int
    first_trainer: int
    clients: int

    @classmethod
    def fresh(cls, clients: int) -> SessionIds:
        return cls(
            first_session=random.randrange(FIRST_BENCH_ID, ID_SPAN),
            first_client=random.randrange(FIRST_BENCH_ID, ID_SPAN),
            first_trainer=random.randrange(FIRST_BENCH_ID, ID_SPAN),
            clients=clients,
        )


def trainer_led_sessions(
    ids: SessionIds, count: int | None, prefix: str, *, package_sessions: int = 100
) -> Iterator[list[Record]]:
    """Per session (`count` of them, or without end), what the platform's other services
    send about it: the client's package (`commerce.packages`) before the client's first
    session, the booking (`booking.sessions`) and the completed trainer-led workout
    (`workouts.workout-sessions`). Sessions go to the clients in turn."""
    when = datetime.now(UTC).replace(microsecond=0)
    number = 0
    while count is None or number < count:
        client = ids.first_client + number % ids.clients
        trainer = ids.first_trainer + number % TRAINERS
        session_id = ids.first_session + number
        records = []
        if number < ids.clients:
            purchase = PackagePurchased(
                purchase_id=f"bench-{uuid.uuid4()}",
                user_id=client,
                sessions=package_sessions,
                package_name="Benchmark package",
                purchased_at=when,
            )
            records.append(record_of(purchase, prefix))
        booked_for = when + timedelta(minutes=number % 600)
        records.append(
            record_of(
                SessionBooked(
                    session_id=session_id,
                    user_id=client,
                    trainer_id=trainer,
                    session_date=booked_for,
                ),
                prefix,
            )
        )
        records.append(
            record_of(
                WorkoutLogged(
                    workout_id=uuid.uuid4(),
                    user_id=client,
                    session_type="trainer-led",
                    session_id=session_id,
                    trainer_id=trainer,
                    title="Personal Training Session",
                    date=booked_for,
                    duration=60,
                    status="completed",
                ),
                prefix,
            )
        )
        yield records
        number += 1


def session_records(ids: SessionIds, count: int, prefix: str) -> list[Record]:
    """Every record of `count` sessions, in the order they are sent."""
    package = math.ceil(count / ids.clients)
    return [
        record
        for records in trainer_led_sessions(ids, count, prefix, package_sessions=package)
        for record in records
    ]


DEDUCTIONS = (
    "select count(*) from ledger_entries where kind = 'deduction' and session_id between %s and %s"
)


async def count_deductions(
    connection: psycopg.AsyncConnection[Any], ids: SessionIds, count: int
) -> int:
    cursor = await connection.execute(
        DEDUCTIONS, (ids.first_session, ids.first_session + count - 1)
    )
    row = await cursor.fetchone()
    return int(row[0]) if row else 0


@dataclass(frozen=True)
class Delivery:
    """One batch of sessions sent and deducted: from the first record produced to the
    moment the credits database had every deduction (or the time ran out)."""

    sessions: int
    records: int
    deducted: int
    produced_in: float
    elapsed: float
    produced: Produced = field(repr=False)
    ids: SessionIds = field(repr=False)

    @property
    def complete(self) -> bool:
        return self.deducted >= self.sessions

    @property
    def rate(self) -> float:
        """Sessions deducted per second."""
        return self.deducted / self.elapsed if self.elapsed > 0 else 0.0


async def deliver_sessions(
    platform: Platform,
    sessions: int,
    clients: int,
    *,
    within: float,
    poll: float = 0.05,
    mix: Callable[[list[Record]], list[Record]] | None = None,
) -> Delivery:
    """Send `sessions` trainer-led sessions (built first) as fast as the producer takes
    them, then poll the credits database every `poll` seconds until it has all their
    deductions, or `within` seconds have passed since the first record. `mix`, when given,
    turns the sessions' records into what is sent (other records mixed in among them)."""
    ids = SessionIds.fresh(min(clients, sessions))
    records = await asyncio.to_thread(session_records, ids, sessions, platform.prefix)
    if mix is not None:
        records = mix(records)
    async with (
        kafka_producer(platform.bootstrap) as producer,
        await psycopg.AsyncConnection.connect(platform.libpq_url("credits"), autocommit=True) as db,
    ):
        began = time.perf_counter()
        produced = await delivered(await send(producer, records))
        produced_in = time.perf_counter() - began
        while True:
            deducted = await count_deductions(db, ids, sessions)
            elapsed = time.perf_counter() - began
            if deducted >= sessions or elapsed > within:
                break
            output.status(
                f"credits: {deducted:,} of {sessions:,} sessions deducted after {elapsed:.1f} s"
            )
            await asyncio.sleep(poll)
    output.clear_status()
    return Delivery(sessions, len(records), deducted, produced_in, elapsed, produced, ids)


def solo_workout(user_id: int) -> dict[str, Any]:
    """A solo workout as the workouts API takes it (free: no booking, no credit)."""
    return {
        "userId": user_id,
        "title": "Morning strength",
        "duration": 45,
        "intensity": 7,
        "status": "completed",
        "exercises": [
            {"name": "Squat", "sets": [{"reps": 8, "weight": 60}, {"reps": 8, "weight": 62.5}]},
            {"name": "Push-up", "sets": [{"reps": 15}]},
        ],
    }
