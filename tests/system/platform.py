"""An isolated copy of the whole platform for system tests.

Each copy runs the four services as real processes (`python -m <service>`) against the shared
Kafka broker and PostgreSQL server, with topics and consumer groups behind a prefix of its own
and a scratch database per service, so tests can kill, restart and replay services without
touching anything else on the machine (the platform `make up` runs included).
"""

from __future__ import annotations

import asyncio
import importlib
import os
import signal
import socket
import subprocess
import sys
from collections import Counter
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psycopg
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient

from contracts.envelope import build_event, encode, partition_key, record_headers, topic_of
from contracts.events import EventPayload
from contracts.identity import Role
from contracts.services import KAFKA_BOOTSTRAP_ENV, SERVICES, Service, service_named
from contracts.topics import Topic
from ops import kafka_access
from ops.demo import TokenMint
from ops.local.errors import PlatformError
from ops.recovery import ServiceControl, Target
from servicekit.db import libpq_url
from servicekit.kafka import client_options
from testkit.helpers import committed_offsets, end_offsets

ROOT = Path(__file__).resolve().parents[2]
SERVICE_NAMES = tuple(service.name for service in SERVICES)


#: How many ports a service start tries before giving up.
PORT_ATTEMPTS = 3


class PortTaken(Exception):
    """The service could not bind the port chosen for it."""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class ServiceProcess:
    service: Service
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


@dataclass
class IsolatedPlatform:
    kafka_bootstrap: str
    topic_prefix: str
    database_urls: dict[str, str]
    log_directory: Path
    #: Signs tokens the services trust (the suite's identity provider).
    tokens: TokenMint
    #: Each database as its owner reaches it (a rebuild drops, creates and migrates it).
    owner_urls: dict[str, str] = field(default_factory=dict)
    #: The client settings of a Kafka principal (each service connects as its own).
    principal_environment: Callable[[str], dict[str, str]] = lambda principal: {}
    processes: dict[str, list[ServiceProcess]] = field(default_factory=dict)
    _producer: AIOKafkaProducer | None = None

    def url(self, name: str) -> str:
        return self.processes[name][0].url

    def http(
        self, role: Role = Role.STAFF, subject: int | str = "tests", timeout: float = 10
    ) -> httpx.AsyncClient:
        """An HTTP client calling as `subject` in `role` (staff, who may do anything, unless
        told otherwise)."""
        token = self.tokens(role, str(subject))
        return httpx.AsyncClient(timeout=timeout, headers={"authorization": f"Bearer {token}"})

    def environment(self, service: Service, port: int) -> dict[str, str]:
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.endswith(("_DATABASE_URL", "_HTTP_PORT", "_CONSUMER_GROUP"))
        }
        env.update(
            {
                **self.principal_environment(service.name),
                KAFKA_BOOTSTRAP_ENV: self.kafka_bootstrap,
                "KAFKA_TOPIC_PREFIX": self.topic_prefix,
                service.database_url_env: self.database_urls[service.name],
                service.http_port_env: str(port),
                service.env_prefix + "LOG_LEVEL": "WARNING",
            }
        )
        return env

    async def start(self, name: str) -> ServiceProcess:
        """Start one more process of a service (a replica when one already runs)."""
        service = service_named(name)
        replicas = self.processes.setdefault(name, [])
        for _ in range(PORT_ATTEMPTS):
            # A port free a moment ago may be taken before the service binds it (any
            # connection's local port comes from the same range): then try another.
            port = free_port()
            log = self.log_directory / f"{name}-{len(replicas)}.log"
            with log.open("ab") as output:
                # Popen only forks and returns; the wait for readiness below is asynchronous.
                process = subprocess.Popen(  # noqa: ASYNC220
                    [sys.executable, "-m", name],
                    cwd=ROOT,
                    env=self.environment(service, port),
                    stdout=output,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            started = ServiceProcess(service, port, process, log)
            try:
                await self.wait_until_ready(started)
            except PortTaken:
                continue
            except BaseException:
                process.kill()
                process.wait(timeout=30)
                raise
            replicas.append(started)
            return started
        raise RuntimeError(f"{name}: no free port in {PORT_ATTEMPTS} attempts")

    async def wait_until_ready(self, started: ServiceProcess, within: float = 60.0) -> None:
        """Ready, and the server answering on its port is this very service: a port taken
        by another server would otherwise pass for it."""
        async with httpx.AsyncClient() as client:
            deadline = asyncio.get_running_loop().time() + within
            while True:
                if started.process.poll() is not None:
                    tail = started.log_tail()
                    if "address already in use" in tail:
                        raise PortTaken(started.port)
                    raise RuntimeError(f"{started.service.name} exited:\n{tail}")
                try:
                    if (await client.get(f"{started.url}/health/ready")).status_code == 200:
                        described = await client.get(f"{started.url}/openapi.json")
                        title = str(described.json()["info"]["title"]).lower()
                        if title.startswith(started.service.name):
                            return
                except (httpx.TransportError, ValueError, KeyError):
                    pass
                if asyncio.get_running_loop().time() > deadline:
                    raise TimeoutError(f"{started.service.name} not ready:\n{started.log_tail()}")
                await asyncio.sleep(0.1)

    def kill(self, name: str, replica: int = 0, sig: signal.Signals = signal.SIGKILL) -> None:
        """Kill a service process (SIGKILL by default: no goodbye, no commit)."""
        process = self.processes[name].pop(replica).process
        process.send_signal(sig)
        process.wait(timeout=30)

    def stop_all(self) -> None:
        for replicas in self.processes.values():
            for started in replicas:
                if started.process.poll() is None:
                    started.process.send_signal(signal.SIGTERM)
            for started in replicas:
                try:
                    started.process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    started.process.kill()
                    started.process.wait()
        self.processes.clear()

    async def settled(self, within: float = 60.0) -> None:
        """Wait until nothing is left in flight: every service has consumed all of its input
        topics and published its whole outbox (checked twice in a row, since consuming can
        produce more)."""
        calm = 0
        async with asyncio.timeout(within):
            while calm < 2:
                calm = calm + 1 if await self._nothing_in_flight() else 0
                await asyncio.sleep(0.2)

    def readers_of(self, topic: Topic) -> set[str]:
        """The consumer groups of the running services that read `topic`."""
        return {self.topic_prefix + name for name in self.processes if topic in inputs_of(name)}

    async def _nothing_in_flight(self) -> bool:
        for name in self.processes:
            if _outbox_backlog(self.database_urls[name]):
                return False
            group = self.topic_prefix + name
            committed = await committed_offsets(self.kafka_bootstrap, group)
            for topic in inputs_of(name):
                ends = await end_offsets(self.kafka_bootstrap, self.topic_prefix + topic.name)
                if any(committed.get(partition, 0) < end for partition, end in ends.items()):
                    return False
        return True

    def deductions(self) -> Counter[tuple[int, int]]:
        """The ledger's deductions per (session, client), as credits' database holds them."""
        with psycopg.connect(libpq_url(self.database_urls["credits"])) as connection:
            rows = connection.execute(
                "select session_id, user_id from ledger_entries where kind = 'deduction'"
            ).fetchall()
        return Counter((int(session), int(client)) for session, client in rows)

    async def publish(self, payloads: Sequence[EventPayload], *, source: str = "/tests") -> None:
        """Publish events as another platform service would: to their contract topics."""
        producer = await self._started_producer()
        deliveries = [
            await producer.send(
                self.topic_prefix + topic_of(payload).name,
                value=encode(build_event(payload, source=source)),
                key=partition_key(payload),
                headers=record_headers(),
            )
            for payload in payloads
        ]
        await asyncio.gather(*deliveries)

    async def publish_raw(self, topic: str, value: bytes, key: bytes = b"1") -> None:
        producer = await self._started_producer()
        await producer.send_and_wait(self.topic_prefix + topic, value=value, key=key)

    async def _started_producer(self) -> AIOKafkaProducer:
        if self._producer is None:
            self._producer = AIOKafkaProducer(
                **client_options(), bootstrap_servers=self.kafka_bootstrap, acks="all", linger_ms=5
            )
            await self._producer.start()
        return self._producer

    def target(self, name: str) -> Target:
        """A service of this copy as the operator's replay and rebuild address it."""
        return Target(
            service=name,
            bootstrap=self.kafka_bootstrap,
            database_url=self.database_urls[name],
            topic_prefix=self.topic_prefix,
            owner_database_url=self.owner_urls[name],
        )

    def control(self, name: str) -> ServiceControl:
        """Stopping and starting a service of this copy, for the operator's replay and
        rebuild: every replica stopped with SIGTERM, one started again."""

        async def stop() -> None:
            while self.processes.get(name):
                await asyncio.to_thread(self.kill, name, 0, signal.SIGTERM)

        async def start() -> None:
            await self.start(name)

        def check_running() -> None:
            replicas = self.processes.get(name, [])
            if not any(replica.process.poll() is None for replica in replicas):
                tail = replicas[0].log_tail(5) if replicas else "never started"
                raise PlatformError(f"{name} is not running: {tail}")

        return ServiceControl(stop=stop, start=start, check_running=check_running)

    async def close(self) -> None:
        self.stop_all()
        if self._producer is not None:
            await self._producer.stop()


def inputs_of(service: str) -> Sequence[Topic]:
    """The topics a service consumes, as its wiring declares them."""
    inputs: Sequence[Topic] = importlib.import_module(f"{service}.main").INPUT_TOPICS
    return inputs


def _outbox_backlog(database_url: str) -> int:
    with psycopg.connect(libpq_url(database_url)) as connection:
        row = connection.execute("select count(*) from outbox").fetchone()
    return int(row[0]) if row else 0


async def start_platform(
    *,
    kafka_bootstrap: str,
    topic_prefix: str,
    database_for: Callable[[str], str],
    log_directory: Path,
    tokens: TokenMint,
    owner_of: Callable[[str, str], str],
    principal_environment: Callable[[str], dict[str, str]],
    services: Sequence[str] = SERVICE_NAMES,
    kind: type[IsolatedPlatform] = IsolatedPlatform,
) -> IsolatedPlatform:
    """`database_for(service)`: its migrated database, as the service connects to it;
    `owner_of(service, url)`: the same database as its owner reaches it;
    `principal_environment(service)`: how it connects to Kafka as its own principal, whose
    ACLs are granted behind the copy's topic prefix."""
    from contracts.topics import ALL_TOPICS
    from ops.local.topics import create_topics

    await create_topics(kafka_bootstrap, [t.with_prefix(topic_prefix) for t in ALL_TOPICS])
    await kafka_access.grant(kafka_bootstrap, kafka_access.platform_acls(topic_prefix))
    database_urls = {name: database_for(name) for name in services}
    platform = kind(
        kafka_bootstrap=kafka_bootstrap,
        topic_prefix=topic_prefix,
        database_urls=database_urls,
        log_directory=log_directory,
        tokens=tokens,
        owner_urls={name: owner_of(name, url) for name, url in database_urls.items()},
        principal_environment=principal_environment,
    )
    try:
        await asyncio.gather(*(platform.start(name) for name in services))
    except BaseException:
        await platform.close()
        raise
    return platform


@asynccontextmanager
async def running_platform(
    *,
    kafka_bootstrap: str,
    topic_prefix: str,
    database_for: Callable[[str], str],
    log_directory: Path,
    tokens: TokenMint,
    owner_of: Callable[[str, str], str],
    principal_environment: Callable[[str], dict[str, str]],
    services: Sequence[str] = SERVICE_NAMES,
    kind: type[IsolatedPlatform] = IsolatedPlatform,
) -> AsyncIterator[IsolatedPlatform]:
    """A copy of the platform (`start_platform`) for a block: stopped and its topics
    deleted at the end."""
    platform = await start_platform(
        kafka_bootstrap=kafka_bootstrap,
        topic_prefix=topic_prefix,
        database_for=database_for,
        log_directory=log_directory,
        tokens=tokens,
        owner_of=owner_of,
        principal_environment=principal_environment,
        services=services,
        kind=kind,
    )
    try:
        yield platform
    finally:
        await platform.close()
        await delete_topics(kafka_bootstrap, topic_prefix)
        await kafka_access.revoke(kafka_bootstrap, kafka_access.platform_acls(topic_prefix))


async def delete_topics(bootstrap: str, prefix: str) -> None:
    """Delete a copy's topics (each contract topic and its `.dlq` twin, behind `prefix`)."""
    from contracts.topics import ALL_TOPICS

    admin = AIOKafkaAdminClient(**client_options(), bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.delete_topics([prefix + topic.name for topic in ALL_TOPICS])
    finally:
        await admin.close()
