"""What the benchmarks share: the running platform (its URLs, databases, topics, consumer
groups and processes, as `ops` finds them), producing records in bulk, trainer-led sessions as
the other platform services send them, waiting for their deductions, driving `wrk`, medians
and percentiles, tables and JSON results.

Every benchmark is a script run from the repository root (`uv run python bench/<name>.py`);
this module sits beside them and is imported as `common`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform as python_platform
import random
import re
import shutil
import socket
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Coroutine, Iterable, Iterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import httpx
import psycopg
from aiokafka import AIOKafkaProducer
from aiokafka.structs import TopicPartition
from psycopg import sql

from contracts.envelope import build_event, encode, partition_key, record_headers, topic_of
from contracts.events import EventPayload, PackagePurchased, SessionBooked, WorkoutLogged
from contracts.identity import Role
from contracts.services import SERVICES, service_named
from ops import databases
from ops.groups import group_lag
from ops.inputs import input_topic_names
from ops.local import operations
from ops.local import services as local_services
from ops.local.config import PlatformConfig, config_from_env
from ops.local.errors import PlatformError
from ops.local.paths import Paths, repository_root
from ops.local.processes import running_pid
from ops.local.secrets import use_local_kafka_principal, use_local_passwords
from servicekit.db import libpq_url
from servicekit.kafka import client_options

T = TypeVar("T")

ROOT = repository_root()
SERVICE_NAMES: tuple[str, ...] = tuple(service.name for service in SERVICES)
#: The CloudEvents `source` of every event a benchmark builds.
SOURCE = "/bench"
#: Ids the benchmarks make up start at or above this, far from anything a test or a person
#: creates; each batch draws a random base of its own, so runs never collide.
FIRST_BENCH_ID = 10**12
ID_SPAN = 10**17
TRAINERS = 25


# --- the running platform ---------------------------------------------------------------


@dataclass(frozen=True)
class Platform:
    """The platform the environment names (`ops env`): the local one of `make up` unless
    KAFKA_BOOTSTRAP_SERVERS, <SERVICE>_DATABASE_URL or KAFKA_TOPIC_PREFIX say otherwise."""

    config: PlatformConfig
    prefix: str

    @property
    def bootstrap(self) -> str:
        return self.config.kafka.bootstrap

    @property
    def paths(self) -> Paths:
        return self.config.paths

    def base_url(self, name: str) -> str:
        return next(s.base_url for s in self.config.services if s.service.name == name)

    def database_url(self, name: str) -> str:
        """The service's database as its settings name it (a SQLAlchemy URL)."""
        return self.config.database_for(service_named(name)).url

    def libpq_url(self, name: str) -> str:
        return libpq_url(self.database_url(name))

    def group(self, name: str) -> str:
        return operations.consumer_group(name, os.environ)

    def pid(self, name: str) -> int | None:
        """The service's process as `ops up` started it (its pid file in .local/run)."""
        return running_pid(local_services.process_spec(self.paths, name))

    def admin(self, name: str) -> databases.DatabaseAdmin:
        """Who may create and drop scratch databases beside the service's own."""
        return operations.database_admin(self.config, name)

    def bearer(self, role: Role = Role.STAFF, subject: int | str = "bench") -> dict[str, str]:
        """Headers of a call as `subject` in `role`, signed by the local identity provider."""
        token = self.config.identity.local_provider(self.paths).token(role, str(subject))
        return {"Authorization": f"Bearer {token}"}


def find_platform() -> Platform:
    return Platform(local_config(), operations.topic_prefix(os.environ))


def local_config() -> PlatformConfig:
    """The platform as the environment names it; for the local one, this process connects
    with the database roles' passwords and as the broker's `ops` principal."""
    paths = Paths(ROOT)
    use_local_passwords(paths)
    config = config_from_env(os.environ, paths)
    if config.kafka.is_local_address:
        use_local_kafka_principal(paths)
    return config


async def require_ready(platform: Platform, names: Sequence[str] = SERVICE_NAMES) -> None:
    """Refuse in one line unless every service named answers its readiness check."""
    async with httpx.AsyncClient(timeout=5) as client:
        for name in names:
            url = platform.base_url(name) + "/health/ready"
            try:
                ready = (await client.get(url)).status_code == 200
            except httpx.TransportError:
                ready = False
            if not ready:
                raise PlatformError(f"{name} is not ready at {url}: start the platform (make up)")


async def settle(platform: Platform, *, within: float, names: Sequence[str] = SERVICE_NAMES) -> int:
    """Wait until every service has consumed its input topics and published its outbox, so
    that a measurement starts on a quiet platform. Returns what is still left after `within`
    seconds (0 once settled)."""
    groups = {platform.group(name): input_topic_names(name, platform.prefix) for name in names}
    deadline = time.monotonic() + within
    while True:
        lags = await group_lag(platform.bootstrap, groups)
        outboxes = await asyncio.to_thread(
            lambda: {name: databases.outbox_backlog(platform.database_url(name)) for name in names}
        )
        left = {
            name: sum(p.lag for p in lags[platform.group(name)]) + outboxes[name] for name in names
        }
        total = sum(left.values())
        if total == 0:
            clear_status()
            return 0
        if time.monotonic() > deadline:
            clear_status()
            print(f"  not settled after {within:g} s ({describe_backlog(left)}); going on")
            return total
        status(f"waiting for the platform to settle: {describe_backlog(left)}")
        await asyncio.sleep(1.0)


def describe_backlog(left: dict[str, int]) -> str:
    busy = [f"{name} {count:,}" for name, count in left.items() if count]
    return "records or outbox rows left: " + (", ".join(busy) or "none")


# --- scratch databases ------------------------------------------------------------------


@dataclass(frozen=True)
class ScratchDatabase:
    """A database beside a service's own on the same server, as each of its roles reaches
    it: the owner (who creates and migrates it) and the runtime role (what runs on it)."""

    service: str
    url: str
    owner_url: str

    @classmethod
    def beside(cls, config: PlatformConfig, service: str, database: str) -> ScratchDatabase:
        own = config.database_for(service_named(service))

        def on(url: str) -> str:
            return url.rsplit("/", 1)[0] + f"/{database}"

        return cls(service, on(own.url), on(own.owner_url))


def prepare_database(
    admin: databases.DatabaseAdmin, scratch: ScratchDatabase, *, migrate: bool = True
) -> None:
    """Create the scratch database empty (dropping any old one), owned by the service's
    owner, with the service's migrations (its runtime role granted what it needs) unless
    `migrate` is false."""
    databases.check_admin(admin, scratch.service, scratch.owner_url)
    databases.recreate(admin, scratch.owner_url)
    if migrate:
        databases.migrate(
            Paths(ROOT).alembic_ini(scratch.service),
            scratch.owner_url,
            service=scratch.service,
            runtime_role=databases.role_name(scratch.url),
        )


def drop(admin: databases.DatabaseAdmin, url: str) -> None:
    with admin.connect() as connection:
        connection.execute(
            sql.SQL("drop database if exists {} with (force)").format(
                sql.Identifier(databases.database_name(url))
            )
        )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# --- producing records ------------------------------------------------------------------


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
                purchase_id=f"bench-{uuid.uuid4()}", user_id=client, sessions=package_sessions,
                package_name="Benchmark package", purchased_at=when,
            )  # fmt: skip
            records.append(record_of(purchase, prefix))
        booked_for = when + timedelta(minutes=number % 600)
        records.append(
            record_of(
                SessionBooked(
                    session_id=session_id, user_id=client, trainer_id=trainer,
                    session_date=booked_for,
                ),
                prefix,
            )
        )  # fmt: skip
        records.append(
            record_of(
                WorkoutLogged(
                    workout_id=uuid.uuid4(), user_id=client, session_type="trainer-led",
                    session_id=session_id, trainer_id=trainer, title="Personal Training Session",
                    date=booked_for, duration=60, status="completed",
                ),
                prefix,
            )
        )  # fmt: skip
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

    @property
    def complete(self) -> bool:
        return self.deducted >= self.sessions

    @property
    def rate(self) -> float:
        """Sessions deducted per second."""
        return self.deducted / self.elapsed if self.elapsed > 0 else 0.0


async def deliver_sessions(
    platform: Platform, sessions: int, clients: int, *, within: float, poll: float = 0.05
) -> Delivery:
    """Send `sessions` trainer-led sessions (built first) as fast as the producer takes
    them, then poll the credits database every `poll` seconds until it has all their
    deductions, or `within` seconds have passed since the first record."""
    ids = SessionIds.fresh(min(clients, sessions))
    records = await asyncio.to_thread(session_records, ids, sessions, platform.prefix)
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
            status(f"credits: {deducted:,} of {sessions:,} sessions deducted after {elapsed:.1f} s")
            await asyncio.sleep(poll)
    clear_status()
    return Delivery(sessions, len(records), deducted, produced_in, elapsed, produced)


# --- wrk --------------------------------------------------------------------------------


@dataclass(frozen=True)
class WrkResult:
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    requests: int
    #: Responses other than 2xx or 3xx, and socket errors of any kind.
    errors: int


_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def require_wrk() -> str:
    found = shutil.which("wrk")
    if found is None:
        raise PlatformError("wrk is not installed: `make bench-wrk` installs it (apt-get)")
    return found


def post_script(
    body: dict[str, Any],
    headers: dict[str, str] | None = None,
    bearer_tokens: Sequence[str] = (),
) -> str:
    """A wrk Lua script that POSTs `body` as JSON, with `headers`, on every request; with
    `bearer_tokens`, each request carries the next of them, round and round."""
    header_lines = "".join(
        f"wrk.headers[{json.dumps(name)}] = {json.dumps(value)}\n"
        for name, value in (headers or {}).items()
    )
    rotation = ""
    if bearer_tokens:
        listed = ", ".join(json.dumps(token) for token in bearer_tokens)
        rotation = (
            f"local tokens = {{{listed}}}\n"
            "local next = 0\n"
            "request = function()\n"
            "  next = next % #tokens + 1\n"
            '  wrk.headers["Authorization"] = "Bearer " .. tokens[next]\n'
            "  return wrk.format()\n"
            "end\n"
        )
    return (
        'wrk.method = "POST"\n'
        'wrk.headers["Content-Type"] = "application/json"\n'
        f"{header_lines}"
        f"wrk.body = {json.dumps(json.dumps(body))}\n"
        f"{rotation}"
    )


def parse_wrk(output: str) -> WrkResult:
    def latency(percent: str) -> float:
        found = re.search(rf"^\s+{percent}%\s+([\d.]+)(us|ms|s|m)\s*$", output, re.MULTILINE)
        if found is None:
            raise PlatformError(f"wrk printed no {percent}% latency:\n{output}")
        return float(found[1]) * _UNITS_MS[found[2]]

    rate = re.search(r"^Requests/sec:\s+([\d.]+)", output, re.MULTILINE)
    total = re.search(r"^\s+(\d+) requests in", output, re.MULTILINE)
    if rate is None or total is None:
        raise PlatformError(f"cannot read wrk's output:\n{output}")
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    sockets = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    errors = int(non_2xx[1]) if non_2xx else 0
    errors += sum(int(n) for n in sockets.groups()) if sockets else 0
    return WrkResult(float(rate[1]), latency("50"), latency("99"), int(total[1]), errors)


async def run_wrk(
    url: str,
    body: dict[str, Any],
    *,
    duration: float,
    connections: int,
    threads: int,
    headers: dict[str, str] | None = None,
    bearer_tokens: Sequence[str] = (),
) -> WrkResult:
    """`wrk --latency` POSTing `body` (with `headers`, or each of `bearer_tokens` in turn)
    to `url` for `duration` seconds."""
    wrk = require_wrk()
    with tempfile.TemporaryDirectory(prefix="bench-wrk-") as directory:
        script = Path(directory) / "post.lua"
        await asyncio.to_thread(script.write_text, post_script(body, headers, bearer_tokens))
        process = await asyncio.create_subprocess_exec(
            wrk, f"-t{threads}", f"-c{connections}", f"-d{duration:g}s", "--latency",
            "-s", str(script), url,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        output, _ = await process.communicate()
    text = output.decode(errors="replace")
    if process.returncode != 0:
        raise PlatformError(f"wrk failed (exit {process.returncode}):\n{text}")
    return parse_wrk(text)


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


# --- statistics, output -----------------------------------------------------------------


def median(values: Iterable[float]) -> float:
    return float(statistics.median(values))


def percentile(values: Sequence[float], percent: float) -> float:
    """The nearest-rank percentile: the smallest value with `percent`% of them at or below."""
    ordered = sorted(values)
    if not ordered:
        return math.nan
    rank = max(1, math.ceil(percent / 100 * len(ordered)))
    return ordered[rank - 1]


#: Progress lines are rewritten at most this often by default.
STATUS_INTERVAL = 0.5
_last_status = 0.0


def status(text: str, *, every: float = STATUS_INTERVAL) -> None:
    """A progress line, rewritten in place (at most once per `every` seconds)."""
    global _last_status
    now = time.monotonic()
    if now - _last_status < every:
        return
    _last_status = now
    print(f"\r  {text:<90}", end="", flush=True)


def clear_status() -> None:
    global _last_status
    _last_status = 0.0
    print(f"\r{'':<92}\r", end="", flush=True)


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], align: str = "") -> list[str]:
    """A Markdown table, its columns padded to line up. `align` has an `l` (left) or `r`
    (right) per column; by default the first column is aligned left, the others (figures)
    right."""
    align = align or "l" + "r" * (len(headers) - 1)
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows, strict=True)]
    widths = [max(width, 3) for width in widths]

    def line(cells: Sequence[str]) -> str:
        padded = [
            cell.ljust(width) if side == "l" else cell.rjust(width)
            for cell, width, side in zip(cells, widths, align, strict=True)
        ]
        return "| " + " | ".join(padded) + " |"

    rule = "|".join(
        "-" * (width + 2) if side == "l" else "-" * (width + 1) + ":"
        for width, side in zip(widths, align, strict=True)
    )
    return [line(headers), f"|{rule}|", *(line(row) for row in rows)]


def machine_summary() -> str:
    return f"{os.cpu_count()} CPUs, Python {python_platform.python_version()}"


def today() -> str:
    return time.strftime("%Y-%m-%d")


def machine() -> dict[str, Any]:
    return {
        "cpus": os.cpu_count(),
        "python": python_platform.python_version(),
        "system": python_platform.platform(),
        "load_average_at_end": list(os.getloadavg()),
    }


def positive(text: str) -> int:
    """An argparse type: a whole number above zero."""
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text} is not above zero")
    return value


def session_arguments(parser: argparse.ArgumentParser, *, sessions: int) -> None:
    """The options of a load of trainer-led sessions (`deliver_sessions`)."""
    parser.add_argument("--sessions", type=positive, default=sessions, help="sessions per run")
    parser.add_argument("--clients", type=positive, default=1_000, help="clients sharing them")
    parser.add_argument(
        "--timeout", type=float, default=3600.0, metavar="SECONDS",
        help="longest wait for the sessions' deductions per run",
    )  # fmt: skip


def wrk_arguments(parser: argparse.ArgumentParser, *, duration: float) -> None:
    parser.add_argument("--duration", type=float, default=duration, help="seconds of wrk per run")
    parser.add_argument("--connections", type=positive, default=32, help="wrk -c")
    parser.add_argument("--threads", type=positive, default=2, help="wrk -t")


def arguments(description: str) -> argparse.ArgumentParser:
    """A parser with the options every benchmark takes."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--runs", type=positive, default=3, help="runs; the median is reported")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the results here")
    parser.add_argument(
        "--settle-timeout", type=float, default=600.0, metavar="SECONDS",
        help="longest wait for the platform to catch up before each measurement",
    )  # fmt: skip
    return parser


def run(benchmark: Coroutine[Any, Any, T]) -> T:
    """Run a benchmark; a platform that is not there (or fails it) ends it with one line."""
    try:
        return asyncio.run(benchmark)
    except PlatformError as error:
        sys.exit(f"error: {error}")


def finish(
    arguments: argparse.Namespace,
    benchmark: str,
    lines: Sequence[str],
    runs: Sequence[dict[str, Any]],
    medians: dict[str, Any],
    targets: dict[str, Any],
) -> None:
    """Print the report; with `--json PATH`, write the runs, medians and targets there too."""
    print()
    print("\n".join(lines))
    path: Path | None = arguments.json
    if path is None:
        return
    parameters = {
        name: str(value) if isinstance(value, Path) else value
        for name, value in vars(arguments).items()
    }
    document = {
        "benchmark": benchmark,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "parameters": parameters,
        "runs": list(runs),
        "median": medians,
        "targets": targets,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2) + "\n")
    print(f"results written to {path}")


def verdict(met: bool) -> str:
    return "yes" if met else "no"
