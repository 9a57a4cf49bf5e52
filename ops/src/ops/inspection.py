"""What operators look at: each consumer group's lag, and each service's readiness, lag,
outbox backlog and (credits) parked deductions. Every figure is read where it lives (the
broker, the service's health endpoint, its database), and one that cannot be read is shown
as such, never guessed."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

import httpx
import psycopg
from aiokafka.errors import KafkaError

from contracts.services import BOOKING, CREDITS
from contracts.session_ids import SESSION_ID_TAKEN
from contracts.topics import BOOKING_SESSIONS
from ops import databases, dead_letters, groups
from ops.databases import Parked
from ops.groups import PartitionLag
from ops.local.errors import PlatformError
from ops.progress import duration

T = TypeVar("T")

READY_PATH = "/health/ready"
HTTP_TIMEOUT = 2.0
#: The services whose database parks deductions until their session's booking arrives.
PARKS_DEDUCTIONS = frozenset({CREDITS.name})
KAFKA_SILENT = "Kafka does not answer"
DATABASE_SILENT = "database does not answer"


@dataclass(frozen=True, slots=True)
class ServiceEndpoints:
    """Where one service answers: its HTTP base URL, its database, its consumer group and
    the topics that group consumes (names on the broker)."""

    service: str
    base_url: str
    database_url: str
    group: str
    topics: Sequence[str]


@dataclass(frozen=True, slots=True)
class ServiceHealth:
    service: str
    #: "ready", "not ready (kafka: ...)" or "no answer".
    readiness: str
    #: Records its group has still to consume; None when Kafka does not answer.
    lag: int | None
    #: Events recorded and not yet published; None when its database does not answer.
    outbox: int | None
    #: Deductions waiting for their session's booking (see `PARKS_DEDUCTIONS`); None when
    #: the service parks none, or its database does not answer.
    parked: Parked | None = None


async def readiness(base_url: str, client: httpx.AsyncClient) -> str:
    try:
        response = await client.get(base_url + READY_PATH, timeout=HTTP_TIMEOUT)
    except httpx.HTTPError:
        return "no answer"
    if response.status_code == 200:
        return "ready"
    try:
        checks = response.json().get("checks", {})
        failing = [name for name, result in checks.items() if result != "ok"]
    except (ValueError, AttributeError):
        failing = []
    return f"not ready ({', '.join(failing)})" if failing else f"not ready ({response.status_code})"


def _read_or_none(read: Callable[[str], T], url: str) -> T | None:
    """What `read` finds in the database of `url`; None when it does not answer."""
    try:
        return read(url)
    except psycopg.Error:
        return None


async def _parked(service: ServiceEndpoints) -> Parked | None:
    if service.service not in PARKS_DEDUCTIONS:
        return None
    return await asyncio.to_thread(_read_or_none, databases.parked_deductions, service.database_url)


async def lags(
    bootstrap: str, consumed: Mapping[str, Sequence[str]]
) -> dict[str, list[PartitionLag]] | None:
    """Each group's lag per partition; None when Kafka does not answer."""
    try:
        return await groups.group_lag(bootstrap, consumed)
    except (PlatformError, KafkaError, OSError):
        return None


async def health(bootstrap: str, services: Sequence[ServiceEndpoints]) -> list[ServiceHealth]:
    group_lags = await lags(bootstrap, {s.group: s.topics for s in services})
    async with httpx.AsyncClient() as client:
        readinesses = await asyncio.gather(*(readiness(s.base_url, client) for s in services))
    outboxes = await asyncio.gather(
        *(
            asyncio.to_thread(_read_or_none, databases.outbox_backlog, s.database_url)
            for s in services
        )
    )
    parked = await asyncio.gather(*(_parked(s) for s in services))
    return [
        ServiceHealth(
            service=s.service,
            readiness=ready,
            lag=None if group_lags is None else sum(p.lag for p in group_lags[s.group]),
            outbox=outbox,
            parked=waiting,
        )
        for s, ready, outbox, waiting in zip(services, readinesses, outboxes, parked, strict=True)
    ]


async def session_id_collisions(
    bootstrap: str, services: Sequence[ServiceEndpoints], prefix: str
) -> int | None:
    """Bookings booking dead-lettered because another session holds their id (a producer
    outside its block of ids) and not redriven since; None when Kafka does not answer."""
    booking = next(s for s in services if s.service == BOOKING.name)
    try:
        listed = await dead_letters.list_dead_letters(
            bootstrap,
            BOOKING_SESSIONS.name,
            prefix,
            dead_letters.Selection(consumer=booking.group, prefix=prefix),
        )
    except (PlatformError, KafkaError, OSError):
        return None
    return sum(
        1 for item in listed if not item.redriven and item.letter.reason_kind == SESSION_ID_TAKEN
    )


def collision_line(collisions: int | None) -> str:
    if collisions is None:
        return f"Session id collisions: {KAFKA_SILENT}"
    if not collisions:
        return "Session id collisions: none"
    return (
        f"Session id collisions: {collisions:,} (booking dead-lettered bookings whose id another"
        " session holds: `ops dlq list booking.sessions`; docs/publishing.md)"
    )


def table(rows: Sequence[Sequence[str]], right: frozenset[int] = frozenset()) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(
            cell.rjust(width) if i in right else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        ).rstrip()
        for row in rows
    ]


def _count(figure: int | None, silent: str) -> str:
    return silent if figure is None else f"{figure:,}"


def _parked_cell(health: ServiceHealth) -> str:
    """'-' for a service that parks nothing; else how many wait, and the oldest's age."""
    if health.service not in PARKS_DEDUCTIONS:
        return "-"
    if health.parked is None:
        return DATABASE_SILENT
    if not health.parked.deductions:
        return "0"
    oldest = duration(health.parked.oldest_age_seconds)
    return f"{health.parked.deductions:,} (oldest {oldest})"


#: The status table's columns after SERVICE (and PROCESS): each one's header and how a
#: service's health fills it. Another figure is a field of `ServiceHealth` and a line here.
HEALTH_COLUMNS: tuple[tuple[str, Callable[[ServiceHealth], str]], ...] = (
    ("READY", lambda h: h.readiness),
    ("LAG", lambda h: _count(h.lag, KAFKA_SILENT)),
    ("OUTBOX", lambda h: _count(h.outbox, DATABASE_SILENT)),
    ("PARKED", _parked_cell),
)


def health_lines(
    healths: Sequence[ServiceHealth], processes: Mapping[str, str] | None = None
) -> list[str]:
    """A table: service, its process (when we manage it), then `HEALTH_COLUMNS`."""
    processes = processes or {}
    header = ["SERVICE", *(["PROCESS"] if processes else []), *(h for h, _ in HEALTH_COLUMNS)]
    rows = [header] + [
        [
            h.service,
            *([processes.get(h.service, "-")] if processes else []),
            *(cell(h) for _, cell in HEALTH_COLUMNS),
        ]
        for h in healths
    ]
    return table(rows)


def lag_lines(group_lags: Mapping[str, Sequence[PartitionLag]]) -> list[str]:
    """A table: group, topic, partition, committed, end, lag; then each group's total."""
    rows = [["GROUP", "TOPIC", "PARTITION", "COMMITTED", "END", "LAG"]]
    for group, partitions in group_lags.items():
        rows += [
            [
                group,
                p.partition.topic,
                str(p.partition.partition),
                "-" if p.committed is None else str(p.committed),
                str(p.end),
                str(p.lag),
            ]
            for p in partitions
        ]
    lines = table(rows, right=frozenset({2, 3, 4, 5}))
    lines.append("")
    lines += [
        f"{group}: lag {sum(p.lag for p in partitions):,} over {len(partitions)} partitions"
        for group, partitions in group_lags.items()
    ]
    return lines
