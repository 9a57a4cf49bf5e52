"""How many trainer-led sessions per second the credits service deducts, beside a ceiling and
a floor measured on the same records in the same run.

    uv run python bench/credits_throughput.py                      # 20,000 sessions, 3 runs
    uv run python bench/credits_throughput.py --sessions 2000 --runs 1 --json credits.json

Each run sends N trainer-led sessions to the running platform as its other services would:
per session a `SessionBooked` on booking.sessions and a completed trainer-led
`WorkoutLogged` on workouts.workout-sessions, plus one `PackagePurchased` per client on
commerce.packages (fresh random ids at or above 10^12 each run). It measures from the first
record produced to the moment the credits database holds all N deductions (polled every
50 ms), producing as fast as the producer can. Then, on those same records:

- ceiling: a bare aiokafka consumer reads them and `json.loads` each value;
- floor: the credits service's own handlers, on a scratch database, driven by a naive loop
  that processes one record per transaction and commits its offset before the next
  (`--naive-sessions` sessions' worth: it is slow).

With `--alone`, booking, workouts and analytics are stopped for the runs (and started again
after them): credits' own efficiency beside the bare read, nothing else on the CPU but
Kafka and PostgreSQL.

Rates are sessions per second (a baseline's records per second divided by the records per
session). The three alternate within each run, the platform settled before each, and the
medians of the runs are reported with the medians of the per-run ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import cli
import discovery
import output
import stats
import workload
from aiokafka import AIOKafkaConsumer
from aiokafka.structs import TopicPartition

from credits.handlers import HANDLERS as CREDITS_HANDLERS
from credits.store import LedgerStore
from ops.local.errors import PlatformError
from servicekit.consumer import IdempotentConsumer, Outcome
from servicekit.db import Database
from servicekit.dead_letters import ConsumedRecord, Letter
from servicekit.kafka import client_options
from servicekit.outbox import Outbox

TARGET_RATE = 5_000.0
TARGET_OF_CEILING = 0.25
TARGET_OVER_FLOOR = 5.0
#: A baseline that has not read its records after this long has stalled.
BASELINE_TIMEOUT = 3600.0


@dataclass(frozen=True)
class Rate:
    """Records of the run handled in `elapsed` seconds, as sessions per second."""

    records: int
    elapsed: float
    records_per_session: float

    @property
    def sessions_per_second(self) -> float:
        return self.records / self.records_per_session / self.elapsed if self.elapsed else 0.0


@dataclass(frozen=True)
class Run:
    credits: workload.Delivery
    ceiling: Rate
    floor: Rate
    floor_outcomes: dict[str, int]

    @property
    def of_ceiling(self) -> float:
        return self.credits.rate / self.ceiling.sessions_per_second

    @property
    def over_floor(self) -> float:
        return self.credits.rate / self.floor.sessions_per_second

    def as_json(self) -> dict[str, Any]:
        return {
            "credits": {
                "sessions": self.credits.sessions,
                "records": self.credits.records,
                "deducted": self.credits.deducted,
                "complete": self.credits.complete,
                "produced_in_s": self.credits.produced_in,
                "elapsed_s": self.credits.elapsed,
                "sessions_per_s": self.credits.rate,
            },
            "ceiling": {**asdict(self.ceiling), "sessions_per_s": self.ceiling.sessions_per_second},
            "floor": {
                **asdict(self.floor),
                "sessions_per_s": self.floor.sessions_per_second,
                "outcomes": self.floor_outcomes,
            },
            "credits_of_ceiling": self.of_ceiling,
            "credits_over_floor": self.over_floor,
        }


async def records_in(
    consumer: AIOKafkaConsumer, ranges: dict[TopicPartition, tuple[int, int]]
) -> AsyncIterator[Any]:
    """Every record of `ranges`, in the order fetches bring them, read with `consumer`
    (assigned and positioned here); a partition is paused once its range is read."""
    consumer.assign(list(ranges))
    for partition, (first, _) in ranges.items():
        consumer.seek(partition, first)
    unread = {partition: end for partition, (_, end) in ranges.items()}
    deadline = time.monotonic() + BASELINE_TIMEOUT
    while unread:
        if time.monotonic() > deadline:
            raise PlatformError(f"reading stalled with {len(unread)} partitions left")
        batches = await consumer.getmany(timeout_ms=1000)
        for partition, records in batches.items():
            end = unread.get(partition)
            if end is None:
                continue
            for record in records:
                if record.offset >= end:
                    break
                yield record
            if records and records[-1].offset >= end - 1:
                del unread[partition]
                consumer.pause(partition)


async def read_back(bootstrap: str, ranges: dict[TopicPartition, tuple[int, int]]) -> int:
    """The ceiling: read every record of `ranges` with a bare consumer (no group, no
    commits) and parse each value as JSON; returns how many it read."""
    consumer = AIOKafkaConsumer(
        **client_options(), bootstrap_servers=bootstrap, enable_auto_commit=False
    )
    await consumer.start()
    try:
        count = 0
        async for record in records_in(consumer, ranges):
            json.loads(record.value)
            count += 1
        return count
    finally:
        await consumer.stop()


class DiscardedDeadLetters:
    """The floor's dead-letter sink: counted, never sent (it must not touch real topics)."""

    def __init__(self) -> None:
        self.reasons: list[str] = []

    async def send_all(self, letters: Sequence[Letter]) -> None:
        self.reasons += [letter.reason for letter in letters]


async def naive_consumption(
    platform: discovery.Platform, ranges: dict[TopicPartition, tuple[int, int]]
) -> tuple[int, float, dict[str, int]]:
    """The floor: the credits handlers on a scratch database, one transaction per record and
    one offset commit per record, in a plain aiokafka loop. Returns the records processed,
    the seconds it took and the count of each outcome."""
    suffix = uuid.uuid4().hex[:8]
    scratch = discovery.ScratchDatabase.beside(platform.config, "credits", f"bench_naive_{suffix}")
    admin = platform.admin("credits")
    name = f"bench-naive-{suffix}"
    database = Database(scratch.url, pool_size=2)
    outcomes: dict[str, int] = {}
    try:
        await asyncio.to_thread(discovery.prepare_database, admin, scratch)
        consumer = IdempotentConsumer(
            name=name, database=database, dead_letters=DiscardedDeadLetters()
        )
        outbox = Outbox(source="/bench/naive", topic_prefix=platform.prefix)
        consumer.handle(LedgerStore(outbox, consumer), CREDITS_HANDLERS)
        kafka = AIOKafkaConsumer(
            **client_options(),
            bootstrap_servers=platform.bootstrap,
            group_id=name,
            enable_auto_commit=False,
        )
        await kafka.start()
        try:
            total = sum(end - first for first, end in ranges.values())
            processed = 0
            began = time.perf_counter()
            async for record in records_in(kafka, ranges):
                outcome = await process_until_done(consumer, ConsumedRecord.of(record))
                outcomes[outcome.value] = outcomes.get(outcome.value, 0) + 1
                await kafka.commit(
                    {TopicPartition(record.topic, record.partition): record.offset + 1}
                )
                processed += 1
                elapsed = time.perf_counter() - began
                output.status(f"floor: {processed:,} of {total:,} records after {elapsed:.1f} s")
            elapsed = time.perf_counter() - began
            output.clear_status()
        finally:
            await kafka.stop()
    finally:
        await database.dispose()
        await asyncio.to_thread(discovery.drop, admin, scratch.owner_url)
    return processed, elapsed, outcomes


async def process_until_done(consumer: IdempotentConsumer, record: ConsumedRecord) -> Outcome:
    while True:
        outcome = await consumer.process(record)
        if outcome is not Outcome.RETRY:
            return outcome
        await asyncio.sleep(consumer.backoff_for(record))


async def one_run(platform: discovery.Platform, arguments: argparse.Namespace, number: int) -> Run:
    sessions, clients = arguments.sessions, arguments.clients
    print(f"run {number}: credits service, {sessions:,} sessions")
    running = ("credits",) if arguments.alone else discovery.SERVICE_NAMES
    await discovery.settle(platform, within=arguments.settle_timeout, names=running)
    delivery = await workload.deliver_sessions(
        platform, sessions, clients, within=arguments.timeout
    )
    per_session = delivery.records / sessions
    done = "" if delivery.complete else f" (timed out: {delivery.deducted:,} deducted)"
    print(
        f"  {delivery.rate:,.0f} sessions/s: {sessions:,} sessions ({delivery.records:,} "
        f"records, produced in {delivery.produced_in:.1f} s) deducted in "
        f"{delivery.elapsed:.1f} s{done}"
    )

    print(f"run {number}: ceiling, a bare consumer reading the same records")
    await discovery.settle(platform, within=arguments.settle_timeout, names=running)
    began = time.perf_counter()
    read = await read_back(platform.bootstrap, delivery.produced.ranges())
    ceiling = Rate(read, time.perf_counter() - began, per_session)
    print(
        f"  {ceiling.sessions_per_second:,.0f} sessions/s: {read:,} records "
        f"in {ceiling.elapsed:.2f} s"
    )

    naive_records = min(delivery.records, math.ceil(arguments.naive_sessions * per_session))
    print(f"run {number}: floor, a naive consumer on the first {naive_records:,} records")
    await discovery.settle(platform, within=arguments.settle_timeout, names=running)
    processed, elapsed, outcomes = await naive_consumption(
        platform, delivery.produced.ranges(naive_records)
    )
    floor = Rate(processed, elapsed, per_session)
    counts = ", ".join(f"{count:,} {outcome}" for outcome, count in outcomes.items())
    print(
        f"  {floor.sessions_per_second:,.0f} sessions/s: {processed:,} records "
        f"in {elapsed:.1f} s ({counts})"
    )
    return Run(delivery, ceiling, floor, outcomes)


def medians(results: list[Run]) -> dict[str, float]:
    return {
        "credits_sessions_per_s": stats.median(r.credits.rate for r in results),
        "ceiling_sessions_per_s": stats.median(r.ceiling.sessions_per_second for r in results),
        "floor_sessions_per_s": stats.median(r.floor.sessions_per_second for r in results),
        "credits_of_ceiling": stats.median(r.of_ceiling for r in results),
        "credits_over_floor": stats.median(r.over_floor for r in results),
    }


def report(results: list[Run], arguments: argparse.Namespace) -> list[str]:
    summary = medians(results)
    records = results[0].credits.records
    incomplete = sum(not r.credits.complete for r in results)
    lines = [
        f"{arguments.sessions:,} trainer-led sessions per run ({records:,} records), "
        f"{min(arguments.clients, arguments.sessions):,} clients; floor on "
        f"{arguments.naive_sessions:,} sessions' worth; {len(results)} runs, medians; "
        f"{'credits alone; ' if arguments.alone else ''}"
        f"{output.machine_summary()}, {output.today()}",
        "",
        *output.table(
            ["measure", "sessions/s", "target", "met"],
            [
                [
                    "credits service",
                    f"{summary['credits_sessions_per_s']:,.0f}",
                    f"≥ {TARGET_RATE:,.0f}",
                    output.verdict(summary["credits_sessions_per_s"] >= TARGET_RATE),
                ],
                [
                    "ceiling: bare consumer, json.loads",
                    f"{summary['ceiling_sessions_per_s']:,.0f}",
                    "",
                    "",
                ],
                [
                    "floor: one transaction and one commit per event",
                    f"{summary['floor_sessions_per_s']:,.0f}",
                    "",
                    "",
                ],
                [
                    "credits / ceiling",
                    f"{summary['credits_of_ceiling']:.3g}",
                    f"≥ {TARGET_OF_CEILING}",
                    output.verdict(summary["credits_of_ceiling"] >= TARGET_OF_CEILING),
                ],
                [
                    "credits / floor",
                    f"{summary['credits_over_floor']:.2f}x",
                    f"≥ {TARGET_OVER_FLOOR:g}x",
                    output.verdict(summary["credits_over_floor"] >= TARGET_OVER_FLOOR),
                ],
            ],
            align="lrrl",
        ),
        "",
        *output.table(
            [
                "run",
                "credits sessions/s",
                "deducted in",
                "ceiling sessions/s",
                "floor sessions/s",
                "credits / ceiling",
                "credits / floor",
            ],
            [
                [
                    str(n),
                    f"{r.credits.rate:,.0f}",
                    f"{r.credits.elapsed:.1f} s",
                    f"{r.ceiling.sessions_per_second:,.0f}",
                    f"{r.floor.sessions_per_second:,.0f}",
                    f"{r.of_ceiling:.3g}",
                    f"{r.over_floor:.2f}x",
                ]
                for n, r in enumerate(results, 1)
            ],
        ),
    ]
    if incomplete:
        lines += [
            "",
            f"{incomplete} run(s) timed out before every deduction: their rate counts "
            "the deductions made by then.",
        ]
    return lines


async def bench(arguments: argparse.Namespace) -> list[Run]:
    platform = discovery.find_platform()
    await discovery.require_ready(platform)
    if not arguments.alone:
        return [await one_run(platform, arguments, n) for n in range(1, arguments.runs + 1)]
    async with discovery.only(platform, ["credits"]):
        return [await one_run(platform, arguments, n) for n in range(1, arguments.runs + 1)]


def main() -> None:
    parser = cli.arguments(__doc__.split("\n\n")[0])
    cli.session_arguments(parser, sessions=20_000)
    parser.add_argument(
        "--naive-sessions",
        type=cli.positive,
        default=2_000,
        help="sessions' worth of records the naive floor consumes per run",
    )
    parser.add_argument(
        "--alone",
        action="store_true",
        help="stop the other services for the runs (started again after them)",
    )
    arguments = parser.parse_args()
    results = cli.run(bench(arguments))
    output.finish(
        arguments,
        "credits_throughput",
        report(results, arguments),
        [r.as_json() for r in results],
        medians(results),
        {
            "credits_sessions_per_s": TARGET_RATE,
            "credits_of_ceiling": TARGET_OF_CEILING,
            "credits_over_floor": TARGET_OVER_FLOOR,
        },
    )


if __name__ == "__main__":
    main()
