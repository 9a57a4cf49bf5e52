"""One service process: its database, its Kafka clients, its consumer and outbox relay, and
the FastAPI app that serves its API, all on one event loop.

A service builds a `ServiceRuntime` from its settings, registers its handlers on
`runtime.consumer`, subscribes it to its input topics, names the topics its outbox publishes
to, and asks for the app. The runtime starts Kafka clients in the app's lifespan and keeps
trying in the background while Kafka is away, so the process stays live and reports itself
not ready until it connects.

The service's own routes answer only callers with a verified bearer token (see
`servicekit.auth`). Besides them the app serves `/health/live`, `/health/ready`, `/metrics`
(Prometheus), `/asyncapi.json` (with `.yaml` and an HTML page) and `/docs` (Swagger UI on
files of its own, `servicekit.docs`), and runs every request in its trace and correlation
context (see docs/observability.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Mapping, Sequence
from contextlib import asynccontextmanager
from importlib import metadata
from itertools import chain
from typing import Annotated, Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord
from fastapi import APIRouter, Depends, FastAPI, Request, status
from fastapi.exceptions import RequestValidationError
from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from faststream.message import StreamMessage

from contracts.topics import Topic
from servicekit.asyncapi import (
    AsyncApiDocument,
    asyncapi_router,
    declare_dead_letters,
    declare_output,
)
from servicekit.auth import (
    AUTH_RESPONSES,
    KeySet,
    KeySource,
    TokenVerifier,
    authenticated,
    jwks_from_file,
    jwks_from_url,
)
from servicekit.consumer import BatchOutcome, IdempotentConsumer
from servicekit.db import Database
from servicekit.dead_letters import ConsumedRecord, DeadLetters
from servicekit.docs import serve_docs
from servicekit.domain import RuleBroken
from servicekit.health import health_router
from servicekit.history import read_history
from servicekit.http import (
    BodySizeLimit,
    RequestContext,
    answer_database_unavailable,
    answer_method_not_allowed,
    answer_refusals,
    refuse_invalid_request,
)
from servicekit.kafka import Producer
from servicekit.metrics import Metrics, PartitionLag, ScrapeTimeState, metrics_router
from servicekit.openapi import declare_shared_responses
from servicekit.outbox import Outbox, OutboxRelay
from servicekit.settings import ServiceSettings

log = logging.getLogger(__name__)


#: How long a poll waits for records when none are there. A poll returns as soon as one
#: arrives (see `_hand_over_on_arrival`), so this only says how often an idle consumer
#: wakes up.
IDLE_POLL_MS = 500


class KafkaNotConnected(RuntimeError):
    pass


class ServiceRuntime:
    def __init__(self, settings: ServiceSettings, *, graceful_timeout: float = 10.0) -> None:
        self.settings = settings
        #: This process's own registry: runtimes built side by side never share a series.
        self.metrics = Metrics()
        self.database = Database(
            settings.database_url.get_secret_value(),
            pool_size=settings.database_pool_size,
            pool_timeout=settings.database_pool_timeout,
        )
        self.producer = Producer(
            settings.kafka_bootstrap_servers,
            client_id=settings.service_name,
            security=settings.kafka_security,
        )
        self.broker = KafkaBroker(
            settings.kafka_bootstrap_servers,
            client_id=settings.service_name,
            security=settings.kafka_security.faststream_security(),
            # Handlers still running this long after shutdown starts are cancelled, and a
            # cancelled record is not committed (checked by the tests of this release).
            graceful_timeout=graceful_timeout,
            # FastStream's own logger has a handler of its own; a plain one reaches the
            # process's JSON handler instead (see servicekit.logs).
            logger=logging.getLogger("faststream.broker"),
            log_level=logging.DEBUG,
        )
        self.outbox = Outbox(source=settings.event_source, topic_prefix=settings.kafka_topic_prefix)
        self.relay = OutboxRelay(
            self.database,
            self.producer,
            metrics=self.metrics,
            refused_retry_interval=settings.outbox_refused_retry_seconds,
        )
        self.consumer = IdempotentConsumer(
            name=settings.consumer_group,
            database=self.database,
            dead_letters=DeadLetters(self.producer, consumer=settings.consumer_group),
            metrics=self.metrics,
        )
        self.token_verifier = TokenVerifier(
            KeySet(_key_source(settings)),
            issuer=settings.auth_issuer,
            audience=settings.auth_audience,
            roles_claim=settings.auth_roles_claim,
        )
        self.metrics.on_scrape(self._measure_outbox)
        self.metrics.on_scrape(self._measure_consumer_lag)
        #: Subscribed topic name (behind the prefix) -> its contract topic.
        self._subscribed: dict[str, Topic] = {}
        self._subscribers: list[Any] = []
        self._history: list[str] = []
        self._kafka_connected = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._on_stopping: list[Callable[[], None]] = []
        self._periodic: list[tuple[float, Callable[[], Awaitable[object]], str]] = []

    def subscribe(self, *topics: Topic) -> None:
        """Feed every record of `topics` to the consumer, in one consumer group per service."""
        names = [self.settings.kafka_topic_prefix + topic.name for topic in topics]
        subscriber = self.broker.subscriber(
            *names,
            group_id=self.settings.consumer_group,
            ack_policy=AckPolicy.MANUAL,
            auto_offset_reset="earliest",
            # Whatever has arrived, up to this many records, is applied in one transaction:
            # one record when traffic is light, full batches when there is a backlog.
            batch=True,
            max_records=self.settings.consumer_batch_size,
            batch_timeout_ms=IDLE_POLL_MS,
            parser=_with_any_headers,
            decoder=_undecoded,
            description=f"Events the {self.settings.service_name} service consumes.",
        )
        _hand_over_on_arrival(subscriber)
        self._subscribers.append(subscriber)
        for name, topic in zip(names, topics, strict=True):
            self._subscribed[name] = topic
            if topic.sole_source is not None:
                self.consumer.sole_sources[name] = topic.sole_source
            self.consumer.topic_event_types[name] = frozenset(topic.event_types)
            declare_dead_letters(self.broker, name=name, service=self.settings.service_name)
        consumer = self.consumer

        @subscriber
        async def on_batch(bodies: list[bytes], message: KafkaMessage) -> None:
            # FastStream hands a batch over as a tuple of aiokafka records.
            records = [ConsumedRecord.of(r) for r in message.raw_message]
            try:
                batch = await consumer.process_batch(records)
            except Exception:
                # Never acknowledged unless applied: the batch comes again.
                log.exception("applying a batch of %d records failed", len(records))
                batch = BatchOutcome([], retry_after=consumer.retry.max_backoff)
            if batch.retry_after is not None:
                await asyncio.sleep(batch.retry_after)
                # Rewinds every partition of the batch to its first record (FastStream 0.7.8).
                await message.nack()
            else:
                # Commits every partition up to the end of the batch.
                await message.ack()

    def reads_history_first(self, *topics: Topic) -> None:
        """Before consuming, apply `topics` (subscribed too) up to their ends at start-up:
        the topics of the service's own announcements, whose facts its inputs alone cannot
        give back in the same form (see `servicekit.history`)."""
        for topic in topics:
            name = self.settings.kafka_topic_prefix + topic.name
            if name not in self._subscribed:
                raise ValueError(f"{topic.name} is read first, so it must be subscribed too")
            self._history.append(name)

    def every(self, seconds: float, job: Callable[[], Awaitable[object]], *, name: str) -> None:
        """Run `job` every `seconds` once the service consumes: after its history is read,
        so what time decides (an expiry) is decided on the whole of it."""
        self._periodic.append((seconds, job, name))

    async def _repeat(
        self, seconds: float, job: Callable[[], Awaitable[object]], name: str
    ) -> None:
        while True:
            try:
                await job()
            except Exception:
                # The next round tries again: what the job decides is idempotent.
                log.exception("%s failed; again in %.0fs", name, seconds)
            await asyncio.sleep(seconds)

    def publishes(self, *topics: Topic) -> None:
        """Name the topics the service's outbox publishes to, for its AsyncAPI document."""
        for topic in topics:
            declare_output(
                self.broker,
                topic,
                name=self.settings.kafka_topic_prefix + topic.name,
                service=self.settings.service_name,
            )

    def create_app(
        self,
        *,
        title: str,
        routers: Sequence[APIRouter] = (),
        refusals: Mapping[type[RuleBroken], int] | None = None,
    ) -> FastAPI:
        """The service's HTTP app; `refusals` gives the status each refusal of its rules
        answers with (`servicekit.http.answer_refusals`)."""
        version = _version_of(self.settings.service_name)
        # `/docs` on Swagger UI's files of our own (`servicekit.docs`), not FastAPI's CDN.
        app = FastAPI(
            title=title,
            version=version,
            lifespan=self._lifespan,
            docs_url=None,
            redoc_url=None,
        )
        serve_docs(app)
        app.state.runtime = self
        app.state.token_verifier = self.token_verifier
        app.add_exception_handler(RequestValidationError, refuse_invalid_request)
        app.add_exception_handler(status.HTTP_405_METHOD_NOT_ALLOWED, answer_method_not_allowed)
        answer_database_unavailable(app)
        answer_refusals(app, refusals or {})
        app.add_middleware(BodySizeLimit, max_bytes=self.settings.http_max_body_bytes)
        app.add_middleware(RequestContext)
        app.include_router(
            health_router(
                {
                    "database": self.database.ping,
                    "kafka": self._ping_kafka,
                    "identity": self.token_verifier.keys.ensure_loaded,
                }
            )
        )
        app.include_router(metrics_router(self.metrics))
        app.include_router(
            asyncapi_router(
                AsyncApiDocument(
                    self.broker,
                    title=title,
                    version=version,
                    description=(
                        f"The Kafka topics the {self.settings.service_name} service consumes "
                        "(receive) and publishes to (send). Every event is a CloudEvent 1.0 "
                        "in structured mode."
                    ),
                    consumed=self._consumed_event_types,
                )
            )
        )
        # Closed by default: every route of the service's own stands behind a verified
        # token, whether or not it asks who the caller is.
        for router in routers:
            declare_shared_responses(router)
            app.include_router(
                router, dependencies=[Depends(authenticated)], responses=AUTH_RESPONSES
            )
        return app

    def _consumed_event_types(self) -> Mapping[str, Collection[str]]:
        """Per subscribed topic, the event types the consumer handles there (all the topic's
        types when it handles none of them: it then only reads past them)."""
        handled = self.consumer.event_types
        return {
            name: [t for t in topic.event_types if t in handled] or topic.event_types
            for name, topic in self._subscribed.items()
        }

    async def _measure_outbox(self, state: ScrapeTimeState) -> None:
        state.outbox = await self.relay.backlog_state()

    async def _measure_consumer_lag(self, state: ScrapeTimeState) -> None:
        for subscriber in self._subscribers:
            # FastStream keeps the running aiokafka consumer here (None until started).
            consumer = getattr(subscriber, "consumer", None)
            if consumer is not None:
                state.lag.extend(await _lag_of(consumer, group=self.settings.consumer_group))

    @asynccontextmanager
    async def _lifespan(self, app: FastAPI) -> AsyncIterator[None]:
        self._tasks.append(
            asyncio.create_task(
                self.token_verifier.keys.keep_trying_until_loaded(), name="identity-keys"
            )
        )
        self._tasks.append(asyncio.create_task(self.start(), name="kafka-connect"))
        try:
            yield
        finally:
            await self.stop()

    async def start(self) -> None:
        """Connect to Kafka (waiting for it as long as it takes), read the service's own
        history if it has one, then start consuming and relaying the outbox."""
        backoff = 0.5
        while True:
            try:
                await self.producer.start()
                await self.broker.connect()
                break
            except Exception as error:
                log.warning("Kafka is not reachable yet (%s); retrying in %.1fs", error, backoff)
                await self.producer.stop()
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10.0)
        self._tasks.append(asyncio.create_task(self.relay.run(), name="outbox-relay"))
        if self._history:
            await self._read_history()
        await self.broker.start()
        for seconds, job, name in self._periodic:
            self._tasks.append(asyncio.create_task(self._repeat(seconds, job, name), name=name))
        # Ready once consuming: what is published from now on is being read.
        self._kafka_connected.set()
        log.info("%s connected to Kafka", self.settings.service_name)

    async def _read_history(self) -> None:
        backoff = 0.5
        while True:
            try:
                await read_history(
                    self.consumer,
                    bootstrap_servers=self.settings.kafka_bootstrap_servers,
                    security=self.settings.kafka_security,
                    group=self.settings.consumer_group,
                    topics=self._history,
                    batch_size=self.settings.consumer_batch_size,
                )
                return
            except Exception as error:
                # Applying history is idempotent: reading it again from the start is safe.
                log.warning("reading history failed (%s); again in %.1fs", error, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10.0)

    async def _ping_kafka(self) -> None:
        if not self._kafka_connected.is_set():
            raise KafkaNotConnected("not connected yet")
        if not await self.broker.ping(timeout=2.0):
            raise KafkaNotConnected("no answer from the cluster")

    def on_stopping(self, callback: Callable[[], None]) -> None:
        """Call `callback` when the process begins to stop, before the server waits for the
        responses still open: long-lived ones (event streams) end then, rather than hold the
        shutdown until it times out."""
        self._on_stopping.append(callback)

    def begin_stopping(self) -> None:
        """The process is stopping: the server says so first (`servicekit.runner`)."""
        callbacks, self._on_stopping = self._on_stopping, []
        for callback in callbacks:
            callback()

    async def stop(self) -> None:
        self.begin_stopping()
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


#: A scrape does not wait longer than this for the broker's end offsets.
LAG_QUERY_TIMEOUT = 2.0


async def _lag_of(consumer: Any, *, group: str) -> list[PartitionLag]:
    """End offset minus position for each partition assigned to a running aiokafka consumer.

    The end offsets come from one ListOffsets request on the consumer's own connections: the
    high watermark it keeps from its fetches goes stale exactly when lag matters, while a
    handler is slow and nothing is fetched. The position (the next record it will hand over)
    is read from its subscription state: `consumer.position()` would wait for a position
    not known yet (just after a rebalance); such partitions are left out instead."""
    assigned = sorted(consumer.assignment())
    if not assigned:
        return []
    ends = await asyncio.wait_for(consumer.end_offsets(assigned), timeout=LAG_QUERY_TIMEOUT)
    subscription = consumer._subscription.subscription
    assignment = subscription.assignment if subscription is not None else None
    if assignment is None:
        return []
    lags = []
    for partition in assigned:
        state = assignment.state_value(partition)
        end = ends.get(partition)
        if state is None or end is None or not state.has_valid_position:
            continue
        lags.append(
            PartitionLag(
                group=group,
                topic=partition.topic,
                partition=partition.partition,
                records=max(end - state.position, 0),
            )
        )
    return lags


def _runtime_of(request: Request) -> ServiceRuntime:
    runtime: ServiceRuntime = request.app.state.runtime
    return runtime


#: A route's `runtime: Runtime` parameter: the runtime of the service serving it.
Runtime = Annotated[ServiceRuntime, Depends(_runtime_of)]


def _key_source(settings: ServiceSettings) -> KeySource:
    if settings.auth_jwks_url is not None:
        return jwks_from_url(settings.auth_jwks_url)
    assert settings.auth_jwks_file is not None  # one or the other, by validation
    return jwks_from_file(settings.auth_jwks_file)


def _version_of(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "0"


def _hand_over_on_arrival(subscriber: Any) -> None:
    """FastStream 0.7.8's batch subscriber sleeps as long as its poll timeout after an empty
    poll, so a record arriving then waits out the sleep. aiokafka's poll already waits until
    a record arrives, so the sleep goes: each poll hands records over as they come."""

    async def poll(consumer: AIOKafkaConsumer) -> tuple[ConsumerRecord[Any, Any], ...]:
        fetched = await consumer.getmany(
            timeout_ms=subscriber.batch_timeout_ms, max_records=subscriber.max_records
        )
        return tuple(chain.from_iterable(fetched.values()))

    subscriber.get_msg = poll


async def _with_any_headers(
    records: tuple[Any, ...], parse: Callable[[tuple[Any, ...]], Awaitable[StreamMessage[Any]]]
) -> StreamMessage[Any]:
    """FastStream's batch parser, given headers it can read. It decodes every header value
    as UTF-8 and fails on one that is not (or null), and a batch that fails there reaches no
    handler and is never acknowledged, so the next batch's commit silently skips every record
    of it. The handler still gets the records exactly as consumed (`raw_message`)."""
    readable = tuple(_headers_as_text(record) for record in records)
    message = await parse(readable)
    message.raw_message = records
    return message


def _headers_as_text(record: Any) -> Any:
    """The record, or a copy whose header values all decode as UTF-8 (aiokafka's
    ConsumerRecord is a dataclass)."""
    headers = record.headers or ()
    if all(value is not None and _is_utf8(value) for _, value in headers):
        return record
    return dataclasses.replace(
        record,
        headers=[
            (name, (value or b"").decode("utf-8", "replace").encode()) for name, value in headers
        ],
    )


def _is_utf8(value: bytes) -> bool:
    try:
        value.decode()
    except UnicodeDecodeError:
        return False
    return True


async def _undecoded(message: StreamMessage[Any]) -> bytes:
    """Leave the body as bytes: the consumer parses it, and dead-letters what is not JSON."""
    return message.body
