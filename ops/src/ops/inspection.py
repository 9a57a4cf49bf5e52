"""What operators look at: each consumer group's lag, and each service's readiness, lag and
outbox backlog. Every figure is read where it lives (the broker, the service's health
endpoint, its database), and one that cannot be read is shown as such, never guessed."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import httpx
import psycopg
from aiokafka.errors import KafkaError

from ops import databases, groups
from ops.groups import PartitionLag
from ops.local.errors import PlatformError

READY_PATH = "/health/ready"
HTTP_TIMEOUT = 2.0


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


def _outbox_or_none(url: str) -> int | None:
    try:
        return databases.outbox_backlog(url)
    except psycopg.Error:
        return None


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
        *(asyncio.to_thread(_outbox_or_none, s.database_url) for s in services)
    )
    return [
        ServiceHealth(
            service=s.service,
            readiness=ready,
            lag=None if group_lags is None else sum(p.lag for p in group_lags[s.group]),
            outbox=outbox,
        )
        for s, ready, outbox in zip(services, readinesses, outboxes, strict=True)
    ]


def table(rows: Sequence[Sequence[str]], right: frozenset[int] = frozenset()) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(
            cell.rjust(width) if i in right else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        ).rstrip()
        for row in rows
    ]


def health_lines(
    healths: Sequence[ServiceHealth], processes: Mapping[str, str] | None = None
) -> list[str]:
    """A table: service, its process (when we manage it), readiness, lag, outbox."""
    processes = processes or {}
    header = ["SERVICE", *(["PROCESS"] if processes else []), "READY", "LAG", "OUTBOX"]
    rows = [header] + [
        [
            h.service,
            *([processes.get(h.service, "-")] if processes else []),
            h.readiness,
            "Kafka does not answer" if h.lag is None else f"{h.lag:,}",
            "database does not answer" if h.outbox is None else f"{h.outbox:,}",
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
