"""Resource edges, on a platform of its own (`ops.chaos.stage.Stage`: Kafka, PostgreSQL and
the four services on a scratch stack), since each changes something server-wide: every
connection PostgreSQL allows held by someone else, a topic whose `max.message.bytes` an
event outgrows, the broker's disk full (a tmpfs of a few MiB as its `log.dirs`), and a
replica whose clock jumped forward or back. docs/reliability.md, "Resource edges", tells
what each shows and the figures measured."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import KafkaError
from aiokafka.structs import TopicPartition

from contracts.envelope import build_event, encode, parse_envelope, partition_key, record_headers
from contracts.envelope import topic_of as contract_topic_of
from contracts.events import (
    CancellationPolicy,
    EventPayload,
    PackagePurchased,
    SessionBooked,
    SessionCancelled,
    SessionCompleted,
)
from contracts.identity import Role
from contracts.principals import OPS, PLATFORM, STORE
from contracts.services import CREDITS
from contracts.session_ids import PRODUCERS, session_id
from contracts.topics import COMMERCE_PACKAGES, WORKOUT_SESSIONS
from credits import clock
from credits.rules import DEFAULT_LOW_THRESHOLD, EXPIRY_GRACE
from credits.store import LedgerStore
from ops.chaos.stage import Stage
from ops.local import kafka as local_kafka
from ops.local import postgres
from ops.local.paths import Paths, repository_root
from ops.local.processes import running_pid
from ops.local.report import silent
from ops.local.scratch import remove
from servicekit.consumer import IdempotentConsumer
from servicekit.db import Database
from servicekit.outbox import Outbox
from testkit.helpers import RecordingDeadLetters

pytestmark = pytest.mark.infra

#: The producer block the tests' sessions take their ids from (a platform service's).
PRODUCER = 1
SOURCE = PRODUCERS[PRODUCER]
#: The broker's disk: room for the stage's topics and a little more, so that it fills fast.
BROKER_DISK = "48M"
#: Refused outbox rows are tried again this often here (300 s by default).
REFUSED_RETRY_SECONDS = 3
HTTP_TIMEOUT = 10.0


@dataclass
class Edges:
    """The stage, and the ways into it the tests share."""

    stage: Stage
    producers: dict[str, AIOKafkaProducer]
    http: httpx.AsyncClient
    serial: int = 0

    def next_session_id(self) -> int:
        self.serial += 1
        return session_id(PRODUCER, self.serial)

    async def publish(self, principal: str, payload: EventPayload, **event: Any) -> str:
        built = build_event(payload, source=SOURCE, **event)
        await self.producers[principal].send_and_wait(
            contract_topic_of(payload).name,
            encode(built),
            key=partition_key(payload),
            headers=record_headers(),
        )
        return built.id

    async def call(self, service: str, method: str, path: str, body: Any = None) -> httpx.Response:
        token = self.stage.token(Role.STAFF, "edges")
        return await self.http.request(
            method,
            self.stage.url(service) + path,
            json=body,
            headers={"authorization": f"Bearer {token}"},
        )

    async def balance(self, user_id: int) -> dict[str, Any]:
        answer = await self.call("credits", "GET", f"/api/credits/{user_id}")
        assert answer.status_code == 200, answer.text
        found: dict[str, Any] = answer.json()
        return found

    async def ledger(self, user_id: int) -> list[dict[str, Any]]:
        answer = await self.call("credits", "GET", f"/api/credits/{user_id}/ledger?limit=500")
        assert answer.status_code == 200, answer.text
        lines: list[dict[str, Any]] = answer.json()
        return lines

    async def metric(self, service: str, name: str, **labels: str) -> float:
        """The sum of a series' samples whose labels include `labels` (0 when absent)."""
        answer = await self.http.get(self.stage.url(service) + "/metrics")
        total = 0.0
        for line in answer.text.splitlines():
            if not line.startswith(name + "{") and not line.startswith(name + " "):
                continue
            if all(f'{key}="{value}"' in line for key, value in labels.items()):
                total += float(line.rsplit(" ", 1)[1])
        return total

    def admin(self) -> AIOKafkaAdminClient:
        return AIOKafkaAdminClient(**self.stage.kafka_options(OPS.name))

    async def grant_package(self, user_id: int, sessions: int, **terms: Any) -> None:
        purchase = PackagePurchased(
            purchase_id=f"edges-{uuid.uuid4().hex[:12]}",
            user_id=user_id,
            sessions=sessions,
            purchased_at=datetime.now(UTC) - timedelta(days=1),
            **terms,
        )
        await self.publish(STORE.name, purchase)
        await until(lambda: self._total_is(user_id, sessions), within=30)

    async def _total_is(self, user_id: int, total: int) -> bool:
        return int((await self.balance(user_id))["total"]) == total


async def until(check: Callable[[], Awaitable[bool]], *, within: float) -> float:
    """Seconds until `check()` holds; TimeoutError past `within`."""
    started = time.monotonic()
    async with asyncio.timeout(within):
        while not await check():
            await asyncio.sleep(0.2)
    return time.monotonic() - started


def new_user() -> int:
    return int(uuid.uuid4().int % 1_000_000_000) + 1


@pytest.fixture(scope="module")
def scratch_environment() -> Iterator[None]:
    """What the stage's services read beside their stack's settings."""
    with pytest.MonkeyPatch.context() as environment:
        environment.setenv("WORKOUTS_OUTBOX_REFUSED_RETRY_SECONDS", str(REFUSED_RETRY_SECONDS))
        yield


@pytest.fixture(scope="module")
async def edges(scratch_environment: None) -> AsyncIterator[Edges]:
    stage = Stage.create(Paths(repository_root()), f"edges-{uuid.uuid4().hex[:8]}", {}, silent)
    disk = stage.paths.kafka_data
    disk.mkdir(parents=True, exist_ok=True)
    mount = ["mount", "-t", "tmpfs", "-o", f"size={BROKER_DISK}", "tmpfs", str(disk)]
    await asyncio.to_thread(subprocess.run, mount, check=True)
    producers: dict[str, AIOKafkaProducer] = {}
    http = httpx.AsyncClient(timeout=HTTP_TIMEOUT)
    try:
        with stage.as_operator():
            await stage.start()
            for principal in (PLATFORM.name, STORE.name):
                producers[principal] = AIOKafkaProducer(
                    **stage.kafka_options(principal), acks="all", linger_ms=0
                )
                await producers[principal].start()
            yield Edges(stage, producers, http)
    finally:
        await http.aclose()
        for producer in producers.values():
            await producer.stop()
        stage.close(keep=True)
        await asyncio.to_thread(subprocess.run, ["umount", "--lazy", str(disk)], check=False)
        remove(stage.paths)


# --- PostgreSQL at max_connections -----------------------------------------------------

HOG = "edges_hog"
#: How PostgreSQL refuses a connection when no slot is left for the role's kind.
SLOTS_TAKEN = ("too many clients", "remaining connection slots are reserved")


class ConnectionHog:
    """Takes every connection PostgreSQL gives a role that is not a superuser, as another
    role: each one the services still hold is cut from the server's side, and its slot taken
    before they can take it back."""

    def __init__(self, stage: Stage) -> None:
        self.stage = stage
        self.held: list[psycopg.Connection[tuple[object, ...]]] = []

    def _superuser(self) -> psycopg.Connection[tuple[object, ...]]:
        return postgres.superuser_connection(self.stage.paths, self.stage.config.postgres_port)

    def fill(self, within: float = 60.0) -> int:
        with self._superuser() as connection:
            connection.execute(f"drop role if exists {HOG}")
            connection.execute(f"create role {HOG} login")
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            try:
                self.held.append(
                    psycopg.connect(
                        host=str(self.stage.paths.postgres_socket_dir),
                        port=self.stage.config.postgres_port,
                        user=HOG,
                        dbname="postgres",
                        connect_timeout=5,
                    )
                )
            except psycopg.OperationalError as error:
                if not any(full in str(error) for full in SLOTS_TAKEN):
                    raise
                if self._cut_the_others() == 0:
                    return len(self.held)
        raise TimeoutError("the services kept their connections")

    def _cut_the_others(self) -> int:
        with self._superuser() as connection:
            rows = connection.execute(
                "select pg_terminate_backend(pid) from pg_stat_activity"
                " where backend_type = 'client backend' and usename not in (%s, current_user)",
                (HOG,),
            ).fetchall()
        return len(rows)

    def release(self) -> None:
        for connection in self.held:
            connection.close()
        self.held.clear()
        with self._superuser() as connection:
            connection.execute(f"drop role if exists {HOG}")


async def test_postgres_out_of_connections_answers_503_and_applies_what_came_meanwhile_once(
    edges: Edges,
) -> None:
    client, trainer = new_user(), new_user()
    await edges.grant_package(client, 10)
    hog = ConnectionHog(edges.stage)
    try:
        started = time.monotonic()
        held = await asyncio.to_thread(hog.fill)
        fill_seconds = time.monotonic() - started

        answered_in = []
        for service, method, path, body in (
            ("credits", "GET", f"/api/credits/{client}", None),
            ("booking", "GET", f"/api/sessions?userId={client}", None),
            ("workouts", "POST", "/api/workout/sessions", {"userId": client, "title": "Run"}),
        ):
            asked = time.monotonic()
            answer = await edges.call(service, method, path, body)
            answered_in.append(time.monotonic() - asked)
            assert answer.status_code == 503, (service, answer.status_code, answer.text)
            assert answer.json() == {"detail": "the database is unavailable; try again shortly"}
            assert answer.headers["retry-after"] == "1"
        ready = await edges.http.get(edges.stage.url("credits") + "/health/ready")
        assert ready.status_code == 503
        assert ready.json()["checks"]["database"] == "unavailable"
        live = await edges.http.get(edges.stage.url("credits") + "/health/live")
        assert live.status_code == 200

        # Sessions delivered while no connection is to be had: each charged once, later.
        sessions = [edges.next_session_id() for _ in range(5)]
        for number, session in enumerate(sessions):
            date = datetime.now(UTC) + timedelta(days=3, hours=number)
            booked = SessionBooked(
                session_id=session, user_id=client, trainer_id=trainer, session_date=date
            )
            await edges.publish(PLATFORM.name, booked)
            completed = SessionCompleted(
                session_id=session, user_id=client, trainer_id=trainer, at=datetime.now(UTC)
            )
            completed_id = await edges.publish(PLATFORM.name, completed)
            # A copy of the same event, as a producer retrying would send it.
            await edges.publish(PLATFORM.name, completed, event_id=completed_id)
        retries = await until(lambda: _retried(edges, "credits"), within=30)
    finally:
        hog.release()
    released = time.monotonic()
    await edges.stage.wait_until_ready(within=60)
    ready_after = time.monotonic() - released

    async def charged() -> bool:
        return int((await edges.balance(client))["used"]) == len(sessions)

    await until(charged, within=60)
    applied_after = time.monotonic() - released
    deductions = [line for line in await edges.ledger(client) if line["kind"] == "deduction"]
    assert sorted(line["sessionId"] for line in deductions) == sorted(sessions)
    assert (await edges.balance(client))["remaining"] == 10 - len(sessions)
    assert await edges.metric("credits", "platform_events_dead_lettered_total") == 0
    print(
        f"\nmax_connections: held {held} connections in {fill_seconds:.1f} s; 503 in "
        f"{max(answered_in):.2f} s at most; consumers retrying after {retries:.1f} s; ready "
        f"{ready_after:.1f} s and every session charged once {applied_after:.1f} s after release"
    )


async def _retried(edges: Edges, service: str) -> bool:
    return await edges.metric(service, "platform_events_consumed_total", outcome="retry") > 0


# --- a topic's max.message.bytes -------------------------------------------------------

#: What the workouts topic takes in this test: a workout without exercises fits, one with
#: forty long-named exercises does not.
SMALL_TOPIC_LIMIT = 2500


async def set_topic_config(edges: Edges, topic: str, config: dict[str, str]) -> None:
    """The topic's whole set of overrides (AlterConfigs replaces them all)."""
    admin = edges.admin()
    await admin.start()
    try:
        await admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, topic, config)])
    finally:
        await admin.close()


async def records_of(
    edges: Edges, topic: str, keep: Callable[[Any], bool], *, until_count: int, within: float
) -> list[Any]:
    """The records of `topic` that `keep` keeps, read from the start until there are
    `until_count` of them, then a moment longer (to see any extra copy)."""
    consumer = AIOKafkaConsumer(**edges.stage.kafka_options(OPS.name), enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        if not partitions:
            await consumer._client.force_metadata_update()
            partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        kept: list[Any] = []
        async with asyncio.timeout(within):
            while len(kept) < until_count:
                for batch in (await consumer.getmany(timeout_ms=200)).values():
                    kept.extend(record for record in batch if keep(record))
        for batch in (await consumer.getmany(timeout_ms=1000)).values():
            kept.extend(record for record in batch if keep(record))
        return kept
    finally:
        await consumer.stop()


def of_user(user_id: int) -> Callable[[Any], bool]:
    return lambda record: record.key == str(user_id).encode()


async def test_an_event_too_large_for_its_topic_is_set_aside_and_the_partition_flows(
    edges: Edges,
) -> None:
    topic = WORKOUT_SESSIONS.name
    client = new_user()
    exercises = [{"name": f"{number:03} " + "x" * 96} for number in range(40)]
    await set_topic_config(
        edges, topic, {**WORKOUT_SESSIONS.config, "max.message.bytes": str(SMALL_TOPIC_LIMIT)}
    )
    try:
        large = await edges.call(
            "workouts",
            "POST",
            "/api/workout/sessions",
            {"userId": client, "title": "Large", "exercises": exercises},
        )
        assert large.status_code == 201, large.text
        asked = time.monotonic()
        small = await edges.call(
            "workouts", "POST", "/api/workout/sessions", {"userId": client, "title": "Small"}
        )
        assert small.status_code == 201, small.text
        # The small one, same key and partition, is published past the large one.
        [published] = await records_of(edges, topic, of_user(client), until_count=1, within=20)
        flowing_in = time.monotonic() - asked
        assert parse_envelope(published.value).data["workoutId"] == small.json()["id"]
        refused = await edges.metric("workouts", "platform_events_refused_total", topic=topic)
        assert refused >= 1
        assert await edges.metric("workouts", "platform_outbox_backlog_rows") == 1
    finally:
        await set_topic_config(edges, topic, dict(WORKOUT_SESSIONS.config))
    restored = time.monotonic()
    both = await records_of(edges, topic, of_user(client), until_count=2, within=30)
    published_after = time.monotonic() - restored
    ids = [parse_envelope(record.value).data["workoutId"] for record in both]
    assert sorted(ids) == sorted([small.json()["id"], large.json()["id"]])
    large_size = max(len(record.value) for record in both)
    assert large_size > SMALL_TOPIC_LIMIT
    assert await edges.metric("workouts", "platform_outbox_backlog_rows") == 0
    print(
        f"\nmax.message.bytes={SMALL_TOPIC_LIMIT}: a {large_size}-byte event set aside, the "
        f"next event of its key published in {flowing_in:.1f} s; the large one published "
        f"{published_after:.1f} s after the limit was raised (retried every "
        f"{REFUSED_RETRY_SECONDS} s here, 300 s by default)"
    )


async def test_a_poison_record_as_large_as_its_topic_takes_is_dead_lettered_whole(
    edges: Edges,
) -> None:
    """A dead letter is its record plus the reason's headers: the `.dlq` twins take twice
    the broker's default, so the largest record a topic accepts still fits."""
    client = new_user()
    poison = b"\x00" * 1_048_400  # within the broker's default 1,048,588 per batch
    key = str(client).encode()
    await edges.producers[STORE.name].send_and_wait(COMMERCE_PACKAGES.name, poison, key=key)
    sent = time.monotonic()
    await edges.grant_package(client, 4)  # behind it on the same partition
    applied_in = time.monotonic() - sent
    dead = COMMERCE_PACKAGES.dead_letter.name
    [letter] = await records_of(edges, dead, of_user(client), until_count=1, within=30)
    assert letter.value == poison
    headers = dict(letter.headers)
    assert headers["dlq-reason-kind"] == b"not-json"
    dead_letter_bytes = len(letter.value) + sum(len(n) + len(v) for n, v in letter.headers)
    print(
        f"\na {len(poison)}-byte poison record dead-lettered whole ({dead_letter_bytes} bytes "
        f"with its headers); the purchase behind it applied in {applied_in:.1f} s"
    )


# --- a replica whose clock jumped ------------------------------------------------------


async def test_a_clock_jump_expires_once_and_late_cancels_go_by_the_stamped_time(
    edges: Edges,
) -> None:
    """A second credits "replica" in this process, its clock jumped, runs the credits
    clock's job beside the real one: forward within the expiry grace nothing happens;
    forward past it the package expires once, however often the job runs; back again
    nothing is undone or done twice. A late cancel is judged by the time booking stamped
    on the cancellation, never by credits' clock."""
    client, trainer = new_user(), new_user()
    now = datetime.now(UTC)
    await edges.grant_package(client, 10, valid_until=now + timedelta(days=2))
    session = edges.next_session_id()
    await edges.publish(
        PLATFORM.name,
        SessionBooked(session_id=session, user_id=client, trainer_id=trainer, session_date=now),
    )
    await edges.publish(
        PLATFORM.name,
        SessionCompleted(session_id=session, user_id=client, trainer_id=trainer, at=now),
    )

    async def used_one() -> bool:
        return int((await edges.balance(client))["used"]) == 1

    await until(used_one, within=30)

    credits = next(d for d in edges.stage.config.databases if d.service.name == "credits")
    database = Database(credits.url)
    store = jumped_replica_store(database)
    try:
        before = await edges.ledger(client)
        await clock.pass_time(database, store, now + timedelta(days=3))  # within the grace
        assert await edges.ledger(client) == before
        for jump in (timedelta(days=10), timedelta(days=10), timedelta(days=40)):
            await clock.pass_time(database, store, now + jump)
        await clock.pass_time(database, store, now - timedelta(days=30))  # and back
    finally:
        await database.dispose()

    async def expired() -> bool:
        return int((await edges.balance(client))["expired"]) == 9

    await until(expired, within=30)
    await asyncio.sleep(2 * 5.0)  # two rounds of the real clock's job, at the right time
    kinds = [line["kind"] for line in await edges.ledger(client)]
    assert sorted(kinds) == ["deduction", "expiry", "grant"]
    balance = await edges.balance(client)
    assert (balance["total"], balance["used"], balance["expired"]) == (10, 1, 9)

    # Late or not is the cancellation's own time against the session's: credits' clock
    # plays no part. Booking's clock two days behind makes a late cancel look early.
    other = new_user()
    await edges.grant_package(other, 10)
    policy = CancellationPolicy(late_cancel_hours=24)
    stamped = {edges.next_session_id(): now, edges.next_session_id(): now - timedelta(days=2)}
    for cancelled, at in stamped.items():
        booked = SessionBooked(
            session_id=cancelled,
            user_id=other,
            trainer_id=trainer,
            session_date=now + timedelta(hours=6),
            policy=policy,
        )
        await edges.publish(PLATFORM.name, booked)
        await edges.publish(
            PLATFORM.name,
            SessionCancelled(session_id=cancelled, user_id=other, trainer_id=trainer, at=at),
        )
    late, early = stamped

    async def forfeited() -> bool:
        return any(line["kind"] == "forfeit" for line in await edges.ledger(other))

    await until(forfeited, within=30)
    await asyncio.sleep(1)
    lines = await edges.ledger(other)
    forfeits = [line["sessionId"] for line in lines if line["kind"] == "forfeit"]
    assert forfeits == [late]
    assert early not in forfeits


def jumped_replica_store(database: Database) -> LedgerStore:
    """The ledger as a credits replica keeps it: its consumer's name, its outbox (which the
    running service's relay publishes)."""
    consumer = IdempotentConsumer(
        name=CREDITS.consumer_group(""), database=database, dead_letters=RecordingDeadLetters()
    )
    return LedgerStore(
        Outbox(source=CREDITS.event_source), consumer, DEFAULT_LOW_THRESHOLD, EXPIRY_GRACE
    )


# --- the broker's disk full --------------------------------------------------------------

FILLER = "edges.filler"
FILLER_RECORD = b"\xff" * (256 * 1024)


async def fill_the_disk(edges: Edges, *, at_most: int) -> tuple[int, str]:
    """Write to a topic of its own until the broker stops taking records: the bytes it
    acknowledged, and how it refused the next."""
    admin = edges.admin()
    await admin.start()
    try:
        await admin.create_topics([NewTopic(FILLER, num_partitions=1, replication_factor=1)])
    finally:
        await admin.close()
    producer = AIOKafkaProducer(
        **edges.stage.kafka_options(OPS.name),
        acks="all",
        request_timeout_ms=5000,
        max_request_size=2 * len(FILLER_RECORD),
    )
    await producer.start()
    written = 0
    try:
        while written < at_most:
            try:
                async with asyncio.timeout(15):
                    await producer.send_and_wait(FILLER, FILLER_RECORD)
            except (KafkaError, TimeoutError) as error:
                return written, type(error).__name__
            written += len(FILLER_RECORD)
        return written, "none"
    finally:
        with contextlib.suppress(Exception):
            async with asyncio.timeout(10):
                await producer.stop()


async def test_a_full_broker_disk_stops_publishing_but_loses_nothing(edges: Edges) -> None:
    client = new_user()
    paths = edges.stage.paths
    started = time.monotonic()
    written, refusal = await fill_the_disk(edges, at_most=4 * 48 * 1024 * 1024)
    filled_in = time.monotonic() - started
    assert refusal != "none", f"{written} bytes taken on a {BROKER_DISK} disk"

    async def broker_gone() -> bool:
        return running_pid(local_kafka.process_spec(paths)) is None

    halted_in = await until(broker_gone, within=60)
    # The API still takes what it is asked: the event waits in the outbox.
    logged = await edges.call(
        "workouts", "POST", "/api/workout/sessions", {"userId": client, "title": "Offline"}
    )
    assert logged.status_code == 201, logged.text
    ready = await edges.http.get(edges.stage.url("workouts") + "/health/ready")
    assert ready.status_code == 503
    assert ready.json()["checks"]["kafka"] == "unavailable"

    disk = str(paths.kafka_data)
    grow = ["mount", "-o", "remount,size=256M", disk]
    await asyncio.to_thread(subprocess.run, grow, check=True)
    restarted = time.monotonic()
    await edges.stage.start_broker()
    admin = edges.admin()
    await admin.start()
    try:
        await admin.delete_topics([FILLER])
    finally:
        await admin.close()
    await edges.stage.wait_until_ready(within=90)
    ready_in = time.monotonic() - restarted
    [record] = await records_of(
        edges, WORKOUT_SESSIONS.name, of_user(client), until_count=1, within=60
    )
    published_in = time.monotonic() - restarted
    assert parse_envelope(record.value).data["workoutId"] == logged.json()["id"]

    async def counted() -> bool:
        answer = await edges.call("analytics", "GET", f"/api/analytics/{client}/session-usage")
        return answer.status_code == 200 and int(answer.json()["total"]) == 1

    await until(counted, within=60)
    print(
        f"\nbroker disk {BROKER_DISK}: {written / 2**20:.1f} MiB of records taken in "
        f"{filled_in:.1f} s, then {refusal}; the broker halted {halted_in:.1f} s later; after "
        f"growing the disk and a restart: ready in {ready_in:.1f} s, the workout logged "
        f"meanwhile published in {published_in:.1f} s and counted once by analytics"
    )
